"""The study's grid, read from ``sweeps/grid.yaml``: the one module that reads that file.

The file holds the values each grid key sweeps (``axes``), how the report names them (``labels``)
and the stages in launch order, each with the axes it sweeps, the keys it fixes and the stage it
waits for. It is found through the config rule (``transfersep.run.config.conf_dir() / "sweeps" /
"grid.yaml"``), so ``$TRANSFERSEP_CONF`` pointing at a copy of ``conf/`` changes the grid.

The Hydra sweeps ``sweeps/<stage>.yaml`` take their params from here (``${grid_sweep:<stage>}``,
``sweep_params``), and so do the study runner, the status command, the report, the demo and the
benchmark (``load_grid``, ``grid_points``). A malformed file raises ``GridError``: one line naming
the file, the key and what to write instead (``transfersep.study.gridcheck``); the grid in memory
is ``transfersep.study.gridspec.Grid``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

import yaml

from transfersep.run.config import conf_dir
from transfersep.run.point import SWEPT_KEYS, GridPoint
from transfersep.study.gridcheck import parse
from transfersep.study.gridspec import Grid, GridError

GRID_FILE = ("sweeps", "grid.yaml")


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
    return parse(path, raw)


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
