"""A run's configuration is part of its identity.

A run directory is a function of the grid point alone, so a relaunch with other hyperparameters
would find the same directory and resume weights trained with the old ones. The resolved config of
the first launch is therefore recorded in ``<run dir>/run_config.json``; a relaunch whose settings
that shape the weights differ is refused in one line naming each key with both values (a dry run
lists it as a problem). ``rerun=true`` trains the run again from its start and records the new
config; another ``study=`` keeps both runs.

Everything shapes the weights (model, data, optim, budget, loss, seed, augment, the phase, the
parent via ``init_from``, any key added later) except the keys in ``FREE``: where things live, what
is logged and watched, how often the run saves, and the switches that act on one launch.

Hydra's own record of a launch (``.hydra/``) is written here too, once the launch is accepted, so
that a refused relaunch does not leave ``.hydra/config.yaml`` claiming values the run never used.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from transfersep.files import RUN_CONFIG, atomic_write_json, atomic_write_text
from transfersep.run.errors import ConfigValueError
from transfersep.run.plan import Plan

# dotted keys (shell patterns) that may differ between launches of one run: they do not shape the
# weights. The one list of them; docs/one-run.md ("Relaunching a run") refers here.
FREE = (
    "paths.*",  # where data, cache and runs live (a dataset moved to another disk is the same data)
    "*.dataset.root",
    "*.dataset.*_root",
    "*.dataset.precache",  # fill the audio cache first or on the fly: the same excerpts either way
    "logger.*",
    "trainer.enable_progress_bar",
    "trainer.log_every_n_steps",
    "trainer.num_sanity_val_steps",
    "trainer.accelerator",  # a requeued job may land on another kind of node
    "data.num_workers",  # item i of every set is a function of (seed, i), whoever loads it
    "lock.*",
    "checkpoint_every_n_steps",  # the resume point's cadence, not the training
    "evaluate",  # whether the test-set evaluation follows (it reads the weights, never writes them)
    "curve.*",  # the SI-SDR curve for Figure 3: measured on the side, never trained on
    "study",  # part of the run directory already
    "dry_run",
    "rerun",
)


# keys added to the configs after runs were recorded without them, with the value that reproduces what
# those runs did: a record that lacks the key reads as this value (so an upgrade does not orphan a study)
IMPLIED = {
    "pretrain.objective": "dc",  # every pretraining was deep clustering on stems before the key existed
}


class ConfigChanged(ConfigValueError):
    """A relaunch whose settings that shape the weights differ from the run's first launch."""


def free(key: str) -> bool:
    return any(fnmatchcase(key, pattern) for pattern in FREE)


def resolved(cfg: DictConfig, plan: Plan) -> dict[str, Any]:
    """The launch's config as plain data, with ``init_from`` as the absolute path it loads."""
    out = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    out.pop("hydra", None)
    if out.get("init_from"):
        out["init_from"] = str(plan.init_from)
    return out


def _flat(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict) and node:
        for k, v in node.items():
            yield from _flat(v, f"{prefix}.{k}" if prefix else str(k))
    else:
        yield prefix, node


def identity(config: dict[str, Any]) -> dict[str, Any]:
    """The settings that shape the weights, as ``{dotted key: value}``."""
    return {k: v for k, v in _flat(config) if not free(k)}


def _as_today(flat: dict[str, Any]) -> dict[str, Any]:
    """A record written when the objective was part of the corpus's name (``pretrain.name``
    slakh_mixit, ``pretrain.dataset.unlabeled: true``) read as today's config of the same run
    (``pretrain.name`` slakh; reading the corpus without stems follows from the objective)."""
    from transfersep.model import objectives

    objective = flat.get("pretrain.objective")
    try:
        reads_stems = objectives.get(objective).reads_stems
    except ValueError:
        return flat
    corpus, named = objectives.split_name(str(flat.get("pretrain.name")))
    if named == objective and named != "dc":
        flat["pretrain.name"] = corpus
    if flat.get("pretrain.dataset.unlabeled") is True and not reads_stems:
        del flat["pretrain.dataset.unlabeled"]
    return flat


def differences(recorded: dict[str, Any], now: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(key, recorded value, value now) of every setting that shapes the weights and differs."""
    old, new = _as_today({**IMPLIED, **identity(recorded)}), {**IMPLIED, **identity(now)}
    unset = "<unset>"
    keys = sorted(old.keys() | new.keys())
    return [(k, old.get(k, unset), new.get(k, unset)) for k in keys if old.get(k, unset) != new.get(k, unset)]


def _show(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v)


def read_record(run_dir: Path) -> dict[str, Any] | None:
    try:
        rec = json.loads((Path(run_dir) / RUN_CONFIG).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return rec.get("config") if isinstance(rec, dict) and isinstance(rec.get("config"), dict) else None


def config_problem(cfg: DictConfig, plan: Plan) -> str | None:
    """Why this launch may not continue the run recorded in its directory (one line), or None."""
    recorded = read_record(plan.run_dir)
    if recorded is None:
        return None
    diff = differences(recorded, resolved(cfg, plan))
    if not diff:
        return None
    changes = ", ".join(f"{k}={_show(new)} (recorded {_show(old)})" for k, old, new in diff)
    return (
        f"{plan.run_dir} was trained with other settings: {changes}; relaunch with the recorded values "
        f"(in {plan.run_dir / RUN_CONFIG}) to continue it, add rerun=true to train it again from its start "
        "with these, or choose another study= to keep both"
    )


def check_unchanged(cfg: DictConfig, plan: Plan) -> None:
    """Refuse a relaunch with other settings that shape the weights (``ConfigChanged``); a
    ``rerun=true`` launch starts the run over and is never refused."""
    if cfg.rerun:
        return
    problem = config_problem(cfg, plan)
    if problem:
        raise ConfigChanged(problem)


def record_launch(cfg: DictConfig, plan: Plan, data: dict[str, Any] | None = None) -> None:
    """At an accepted launch: the run's config and the index of its data (``run.dataid``; at its
    first launch, or again on ``rerun=true``) and Hydra's record of this launch (``.hydra/``, as
    Hydra itself would write it)."""
    if cfg.rerun or read_record(plan.run_dir) is None:
        atomic_write_json(
            plan.run_dir / RUN_CONFIG, {"config": resolved(cfg, plan), **({"data": data} if data else {})}
        )
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():  # called outside a Hydra job (tests): nothing of Hydra's to keep
        return
    full = HydraConfig.instance().cfg
    out = plan.run_dir / ".hydra"
    out.mkdir(exist_ok=True)
    atomic_write_text(out / "config.yaml", OmegaConf.to_yaml(cfg))
    atomic_write_text(out / "hydra.yaml", OmegaConf.to_yaml(OmegaConf.masked_copy(full, ["hydra"])))
    atomic_write_text(out / "overrides.yaml", OmegaConf.to_yaml(full.hydra.overrides.task))
