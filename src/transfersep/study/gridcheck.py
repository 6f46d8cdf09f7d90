"""Checking ``sweeps/grid.yaml`` as it is parsed: every key, value and stage is validated against the
grid keys and the config groups, and a malformed file raises ``GridError``, one line naming the
file, the key and what to write instead."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from transfersep.run.point import GRID_KEYS, REPLICATE_KEYS, SWEPT_KEYS, PlanError
from transfersep.study.gridspec import Grid, GridError, Stage

_NAME = re.compile(r"^[A-Za-z0-9_]+$")  # run folders join values with '-', Hydra sweeps with ','


def _fail(path: Path, key: str, what: str) -> GridError:
    return GridError(f"{path}: {key}: {what}")


def _mapping(path: Path, key: str, node: object, optional: bool = False) -> dict:
    if node is None and optional:
        return {}
    if not isinstance(node, dict):
        raise _fail(path, key, f"must be a mapping, got {type(node).__name__}")
    return node


def _names(path: Path, key: str, node: object) -> tuple[str, ...]:
    if not isinstance(node, list) or not node:
        raise _fail(path, key, "must be a non-empty list of names, e.g. [a, b]")
    names = tuple(str(v) for v in node)
    bad = [n for n in names if not _NAME.match(n)]
    if bad:
        raise _fail(path, key, f"{bad[0]!r} is no valid name (letters, digits and _ only)")
    if len(set(names)) != len(names):
        raise _fail(path, key, f"lists a value twice: {[n for n in names if names.count(n) > 1][0]!r}")
    return names


def _replicates(path: Path, key: str, node: object) -> tuple[str, ...]:
    values = _names(path, key, node)
    if not all(v.isdigit() for v in values):
        raise _fail(path, key, f"replicates are integers from 0, e.g. [0, 1, 2]; got {list(values)}")
    return values


def _check_config(path: Path, key: str, axis: str, value: str) -> None:
    """A value of an axis is a config group option: conf/<axis>/<value>.yaml must exist."""
    if not (path.parent.parent / axis / f"{value}.yaml").is_file():
        raise _fail(path, key, f"{value!r} has no config {axis}/{value}.yaml in {path.parent.parent}: write it first")


def parse(path: Path, raw: object) -> Grid:
    top = _mapping(path, "the file", raw)
    extra = set(top) - {"axes", "labels", "exclude", "stages"}
    if extra:
        raise _fail(path, sorted(extra)[0], "unknown key; the file holds axes, labels, exclude and stages")
    axes_raw = _mapping(path, "axes", top.get("axes"))
    for k in axes_raw:
        if k not in SWEPT_KEYS:
            raise _fail(path, f"axes.{k}", f"unknown axis; the axes are the grid keys {', '.join(SWEPT_KEYS)}")
    axes = {}
    for k in GRID_KEYS:
        if k not in axes_raw and k != "objective":  # a grid without the axis pretrains as the paper did
            raise _fail(path, f"axes.{k}", "missing; every grid key needs its list of values")
        axes[k] = _names(path, f"axes.{k}", axes_raw.get(k, ["dc"]))
        for v in axes[k]:
            _check_config(path, f"axes.{k}", k, v)
    for k in REPLICATE_KEYS:  # plain integer keys of conf/train.yaml: no config files
        axes[k] = _replicates(path, f"axes.{k}", axes_raw.get(k, [0]))
    labels: dict[str, dict[str, str]] = {}
    for k, node in _mapping(path, "labels", top.get("labels"), optional=True).items():
        if k not in SWEPT_KEYS:
            raise _fail(path, f"labels.{k}", f"unknown axis; the axes are {', '.join(SWEPT_KEYS)}")
        labels[k] = {str(v): str(t) for v, t in _mapping(path, f"labels.{k}", node).items()}
    stages_raw = _mapping(path, "stages", top.get("stages"))
    if not stages_raw:
        raise _fail(path, "stages", "lists no stage")
    stages: dict[str, Stage] = {}
    for name, node in stages_raw.items():
        stages[str(name)] = _stage(path, str(name), node, axes, stages)
    defaults = _defaults(path.parent.parent / "train.yaml")
    grid = Grid(path, axes, labels, stages, defaults, _exclude(path, top.get("exclude"), axes))
    for st in stages.values():
        _check_stage_name(grid, st)
    return grid


def _stage(path: Path, name: str, node: object, axes: dict, before: dict[str, Stage]) -> Stage:
    key = f"stages.{name}"
    node = _mapping(path, key, node)
    extra = set(node) - {"sweeps", "fixed", "waits_for"}
    if extra:
        raise _fail(path, f"{key}.{sorted(extra)[0]}", "unknown key; a stage has sweeps, fixed and waits_for")
    sweeps = _names(path, f"{key}.sweeps", node.get("sweeps"))
    for k in sweeps:
        if k not in axes:
            raise _fail(path, f"{key}.sweeps", f"{k!r} is no axis; the axes are {', '.join(axes)}")
    fixed = {str(k): str(v) for k, v in _mapping(path, f"{key}.fixed", node.get("fixed"), optional=True).items()}
    for k, v in fixed.items():
        if k not in axes:
            raise _fail(path, f"{key}.fixed.{k}", f"no axis; the axes are {', '.join(axes)}")
        if k in sweeps:
            raise _fail(path, f"{key}.fixed.{k}", "the stage sweeps this key too: keep one of the two")
        if k in GRID_KEYS:
            _check_config(path, f"{key}.fixed.{k}", k, v)
    waits = node.get("waits_for")
    if waits is not None and str(waits) not in before:
        known = ", ".join(before) or "none"
        raise _fail(
            path, f"{key}.waits_for", f"unknown stage {waits!r}; it must name a stage listed before it ({known})"
        )
    if not (path.parent / f"{name}.yaml").is_file():
        sweep = f"{path.parent / name}.yaml"
        raise _fail(path, key, f"no sweep file {sweep} (write one: hydra.sweeper.params: ${{grid_sweep:{name}}})")
    return Stage(name, sweeps, fixed, None if waits is None else str(waits))


def _exclude(path: Path, node: object, axes: dict) -> tuple[dict[str, frozenset[str]], ...]:
    if node is None:
        return ()
    if not isinstance(node, list):
        raise _fail(path, "exclude", "must be a list of rules, e.g. [{pretrain: [a], augment: [b]}]")
    rules = []
    for i, rule in enumerate(node):
        rule = _mapping(path, f"exclude[{i}]", rule)
        if not rule:
            raise _fail(path, f"exclude[{i}]", "names no axis (it would exclude every run)")
        for k in rule:
            if k not in axes:
                raise _fail(path, f"exclude[{i}].{k}", f"no axis; the axes are {', '.join(axes)}")
        rules.append({str(k): frozenset(_names(path, f"exclude[{i}].{k}", v)) for k, v in rule.items()})
    return tuple(rules)


def _check_stage_name(grid: Grid, st: Stage) -> None:
    """The stage's name is the run folder run/plan.py derives from its grid points."""
    gp = grid.point(st.name, {k: grid.axes[k][0] for k in st.sweeps})
    try:
        derived = gp.stage
    except PlanError as e:
        raise _fail(grid.path, f"stages.{st.name}", f"its grid points are no runs: {e}") from None
    if derived != st.name:
        raise _fail(grid.path, f"stages.{st.name}", f"its grid points are {derived} runs (e.g. {gp.subdir}): fix fixed")
    parent = gp.parent.stage if gp.parent else None
    if st.waits_for is not None and parent != st.waits_for:
        starts = f"start from {parent} runs" if parent else "start from no other run"
        raise _fail(grid.path, f"stages.{st.name}.waits_for", f"its grid points {starts}: write waits_for: {parent}")


def _defaults(train_yaml: Path) -> dict[str, str]:
    """The grid keys' defaults in conf/train.yaml's defaults list."""
    try:
        entries = (yaml.safe_load(train_yaml.read_text(encoding="utf-8")) or {}).get("defaults") or []
    except (OSError, yaml.YAMLError):
        return {}
    return {str(k): str(v) for e in entries if isinstance(e, dict) for k, v in e.items() if k in GRID_KEYS}
