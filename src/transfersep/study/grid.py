"""The study's grid, read from ``sweeps/grid.yaml``: the one module that reads that file.

The file holds the values each grid key sweeps (``axes``), how the report names them (``labels``)
and the stages in launch order, each with the axes it sweeps, the keys it fixes and the stage it
waits for. It is found through the config rule (``transfersep.run.config.conf_dir() / "sweeps" /
"grid.yaml"``), so ``$TRANSFERSEP_CONF`` pointing at a copy of ``conf/`` changes the grid.

The Hydra sweeps ``sweeps/<stage>.yaml`` take their params from here (``${grid_sweep:<stage>}``,
``sweep_params``), and so do the study runner, the status command, the report, the demo and the
benchmark (``load_grid``, ``grid_points``). A malformed file raises ``GridError``: one line naming
the file, the key and what to write instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from transfersep.run.config import conf_dir
from transfersep.run.point import GRID_KEYS, REPLICATE_KEYS, SWEPT_KEYS, GridPoint, PlanError, pretraining

GRID_FILE = ("sweeps", "grid.yaml")
_NAME = re.compile(r"^[A-Za-z0-9_]+$")  # run folders join values with '-', Hydra sweeps with ','


class GridError(ValueError):
    """``sweeps/grid.yaml`` is malformed (the message names the file and the key)."""


@dataclass(frozen=True)
class Stage:
    name: str
    sweeps: tuple[str, ...]  # the axes this stage's multirun sweeps (and a command line narrows)
    fixed: dict[str, str]  # keys set to one value (the others take conf/train.yaml's defaults)
    waits_for: str | None  # the stage whose finished runs this one starts from


@dataclass(frozen=True)
class Grid:
    path: Path
    axes: dict[str, tuple[str, ...]]
    labels: dict[str, dict[str, str]]
    stages: dict[str, Stage]  # in launch order
    defaults: dict[str, str]  # the grid keys' defaults of conf/train.yaml
    exclude: tuple[dict[str, frozenset[str]], ...] = ()  # rules: axis -> values; a point matching all is no run

    def excluded(self, point: GridPoint | dict[str, str]) -> str | None:
        """Why ``point`` is left out of the study (the rule of ``exclude`` it matches, or an objective
        that reads no stems under an augmentation that needs them, as text), or None. A dict may name
        the pretraining as records do (``pretrain: slakh_mixit``, no ``objective``) and some keys only."""
        from transfersep.model import objectives

        values = point if isinstance(point, dict) else {k: getattr(point, k) for k in GRID_KEYS}
        values = {k: str(v) for k, v in values.items()}
        if "objective" not in values and "pretrain" in values:
            values["pretrain"], values["objective"] = objectives.split_name(values["pretrain"])
        for rule in self.exclude:
            if all(values.get(k, self.defaults.get(k)) in vs for k, vs in rule.items()):
                named = " and ".join(f"{k}={values.get(k, self.defaults.get(k))}" for k in rule)
                return f"{self.path} excludes {named} (its exclude list)"
        if values.get("pretrain", "none") != "none" and values.get("objective", "dc") in objectives.names():
            why = objectives.excluded(values.get("objective", "dc"), _incoherent(self.path, values.get("augment")))
            if why:
                return f"augment={values.get('augment')} with objective={values.get('objective')}: {why}"
        return None

    @property
    def pretrainings(self) -> tuple[str, ...]:
        """The pretrainings of the grid as folders and records name them (corpus and objective:
        ``slakh``, ``slakh_mixit``), objective by objective in the grid's order, less those its
        exclude list leaves out whatever the augmentation."""
        out = []
        for o in self.axes["objective"]:
            for c in self.axes["pretrain"]:
                rules = [r for r in self.exclude if set(r) <= {"pretrain", "objective"}]
                if not any(all({"pretrain": c, "objective": o}[k] in vs for k, vs in r.items()) for r in rules):
                    out.append(pretraining(c, o))
        return tuple(out)

    def label(self, axis: str, value: str) -> str:
        """How figures and tables name ``value`` of ``axis`` (its own name when it has no label); a
        pretraining by an objective other than dc is named by its corpus and its objective
        ("Slakh mixtures, MixIT (self-supervised)" where the objective reads no stems)."""
        from transfersep.model import objectives

        own = self.labels.get(axis, {}).get(value)
        if own is not None or axis != "pretrain":
            return own if own is not None else value
        corpus, objective = objectives.split_name(value)
        if objective == "dc":
            return value
        what = self.labels.get("objective", {}).get(objective, objective)
        mixtures = "" if objectives.get(objective).reads_stems else " mixtures"
        return f"{self.label('pretrain', corpus)}{mixtures}, {what}"

    def stage(self, name: str) -> Stage:
        if name not in self.stages:
            raise GridError(f"unknown stage {name!r}; the stages of {self.path} are {', '.join(self.stages)}")
        return self.stages[name]

    def sweep_params(self, name: str) -> dict[str, str]:
        """``hydra.sweeper.params`` of stage ``name``: its swept axes as ``a,b,c`` and its fixed keys."""
        st = self.stage(name)
        out = {}
        for k in SWEPT_KEYS:
            if k in st.sweeps:
                out[k] = ",".join(self.axes[k])
            elif k in st.fixed:
                out[k] = st.fixed[k]
        return out

    def point(self, name: str, values: dict[str, str]) -> GridPoint:
        """The grid point of stage ``name`` with ``values`` for (some of) its swept keys."""
        st = self.stage(name)
        point = {k: values.get(k, st.fixed.get(k, self.defaults.get(k, "none"))) for k in GRID_KEYS}
        for k in REPLICATE_KEYS:  # a stage that does not sweep a replicate key takes replicate 0
            point[k] = int(values.get(k, st.fixed.get(k, 0))) if k in st.sweeps or k in st.fixed else 0
        return GridPoint(**point)


def _incoherent(grid_file: Path, augment: str | None) -> bool:
    """Whether ``conf/augment/<augment>.yaml`` mixes incoherently (draws each stem from another track)."""
    if augment in (None, "none"):
        return False
    return _augment_incoherent(grid_file.parent.parent / "augment" / f"{augment}.yaml")


@lru_cache(maxsize=32)
def _augment_incoherent(path: Path) -> bool:
    try:
        return bool((yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("incoherent"))
    except (OSError, yaml.YAMLError, AttributeError):
        return False


def grid_path() -> Path:
    return conf_dir().joinpath(*GRID_FILE)


def load_grid() -> Grid:
    """The grid of ``sweeps/grid.yaml`` (validated; read again only when the file changes)."""
    path = grid_path()
    train = conf_dir() / "train.yaml"
    stamp = tuple((p.stat().st_mtime_ns, p.stat().st_size) if p.is_file() else None for p in (path, train))
    return _load(path, stamp)


@lru_cache(maxsize=8)
def _load(path: Path, _stamp: tuple) -> Grid:
    if not path.is_file():
        raise GridError(f"{path}: the study's grid file is missing; restore it from the repository's sweeps/grid.yaml")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" (line {where.line + 1})" if where else ""
        raise GridError(f"{path}: not valid YAML{at}: {getattr(e, 'problem', None) or e}") from None
    return _parse(path, raw)


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


def _parse(path: Path, raw: object) -> Grid:
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


def stage_names() -> list[str]:
    """The stages in launch order."""
    return list(load_grid().stages)


def sweep_params(name: str) -> dict[str, str]:
    """``hydra.sweeper.params`` of ``sweeps/<name>.yaml`` (the ``${grid_sweep:<name>}`` resolver)."""
    return load_grid().sweep_params(name)


def expand(params: dict[str, str], overrides: Sequence[str] = ()) -> list[dict[str, str]]:
    """Jobs of a multirun as Hydra's basic sweeper forms them: the sweep's params, then the
    command-line overrides (a key given again replaces the sweep's value, which narrows the grid).
    Returns one ``{key: value}`` dict per job."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()] + list(overrides))
    (batch,) = BasicSweeper.split_arguments(parsed, max_batch_size=None)
    return [dict(o.split("=", 1) for o in job) for job in batch]


def override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def overrides_for(stage: str, overrides: Sequence[str]) -> list[str]:
    """The overrides that apply to one stage: the grid keys it sweeps (which narrow it) and every
    override that is not a grid key (``study=``, ``paths.*``, ``hydra/launcher=slurm`` ...)."""
    keep = load_grid().stage(stage).sweeps
    return [o for o in overrides if override_key(o) not in SWEPT_KEYS or override_key(o) in keep]


def grid_points(stages: Iterable[str] | None = None, overrides: Sequence[str] = ()) -> list[GridPoint]:
    """Every run of the given stages (default: all, in launch order), narrowed by ``overrides``,
    without repeats and without the points the grid excludes. Overrides that are not grid keys
    (``study=``, ``paths.*``) are ignored."""
    grid = load_grid()
    seen: dict[str, GridPoint] = {}
    for name in grid.stages if stages is None else stages:
        grid_ov = [o for o in overrides_for(name, overrides) if override_key(o) in SWEPT_KEYS]
        for job in expand(grid.sweep_params(name), grid_ov):
            gp = grid.point(name, job)
            if grid.excluded(gp) is None:
                seen.setdefault(gp.subdir, gp)
    return list(seen.values())


def register_resolver() -> None:
    """``${grid_sweep:<stage>}``, the params of the Hydra sweeps ``sweeps/<stage>.yaml``; registered by
    the training command (``transfersep.cli.train``), which sits above the study."""
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("grid_sweep"):
        OmegaConf.register_new_resolver("grid_sweep", lambda stage: sweep_params(str(stage)))
