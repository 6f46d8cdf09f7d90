"""The commands an error message suggests: ``transfersep train <grid point>`` with the user's other overrides.

A suggestion is a string for a person to run (``train_suggestion``); the argv a study launches is
``study.launch.train_argv``.
"""

from __future__ import annotations

import shlex

from transfersep.run.point import GRID_KEYS

# overrides that choose the grid point or act on one run only; everything else (experiment, paths,
# data, model, study, seed, budgets, ...) is carried into a suggested command
_NOT_CARRIED = (
    *GRID_KEYS,
    "fold",  # a parent pretraining has no fold (the seed is carried: a replicate starts from its own)
    "init_from",
    "rerun",
    "dry_run",
    "evaluate",
    "hydra",
    "sweeps",
    "curve",
)


def task_overrides() -> list[str]:
    """This job's command-line overrides (empty outside Hydra)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.initialized():
            return list(HydraConfig.get().overrides.task)
    except Exception:  # outside a Hydra job: nothing to carry
        pass
    return []


def _key(override: str) -> str:
    return override.lstrip("+~").split("=", 1)[0]


def carried_overrides(overrides: list[str] | None = None) -> list[str]:
    """The overrides a suggested command keeps: all but the grid point's own and one-run switches."""
    out = []
    for o in task_overrides() if overrides is None else overrides:
        k = _key(o)
        if k.split(".")[0].split("/")[0] in _NOT_CARRIED:
            continue
        out.append(o)
    return out


def train_suggestion(
    grid: dict[str, str], study: str | None = None, overrides: list[str] | None = None, *, rerun: bool = False
) -> str:
    """``transfersep train <grid point> study=<study> <the user's other overrides>``, shell-quoted;
    ``rerun``: ends in ``rerun=true`` (a finished run trains again instead of being skipped)."""
    carried = carried_overrides(overrides)
    words = [f"{k}={v}" for k, v in grid.items()]
    if study is not None and not any(_key(o) == "study" for o in carried):
        words.append(f"study={study}")
    words += carried + (["rerun=true"] if rerun else [])
    return " ".join(["transfersep", "train", *(shlex.quote(w) for w in words)])
