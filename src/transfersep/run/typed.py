"""Typed config values: every setting a run reads is checked before anything is written, dry runs
included, and refused in one line naming the key (``ConfigValueError``, exit 2).

Hydra's command line gives strings for anything it cannot parse as another type, and the configs
have no schema, so ``data.generated=no`` arrives as the non-empty string ``"no"``, which Python
would take as true. Booleans therefore accept ``true`` / ``false`` only (YAML's spelling, which
Hydra turns into real booleans); numbers must be numbers within their range; named choices must
be one of their names.
"""

from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf

from transfersep.run.errors import ConfigValueError

# (key, kind, lower bound) of the numeric settings a run reads
NUMERIC: list[tuple[str, type, float | None]] = [
    ("seed", int, 0),  # a replicate index: folders name it (-seed<s>)
    ("fold", int, 0),  # a declared fold of the downstream set (0: the paper's split)
    ("budget.pretrain", int, 1),
    ("budget.finetune", int, 1),
    ("budget.baseline", int, 1),
    ("data.excerpt_seconds", float, 0.0),
    ("data.batch_size", int, 1),
    ("data.num_workers", int, 0),
    ("data.n_val", int, 1),
    ("data.n_test", int, 1),
    ("data.eval_seed", int, None),
    ("loss.alpha", float, 0.0),
    ("optim.lr", float, 0.0),
    ("optim.autoclip_percentile", float, 0.0),
    ("optim.plateau_patience_steps", int, 1),
    ("optim.plateau_factor", float, 0.0),
    ("val_every_n_steps", int, 1),
    ("checkpoint_every_n_steps", int, 1),
    ("curve.every_n_steps", int, 0),
    ("curve.n_excerpts", int, 0),
    ("model.n_bins", int, 1),
    ("model.hidden_size", int, 1),
    ("model.num_layers", int, 1),
    ("model.embedding_dim", int, 1),
    ("model.dropout", float, 0.0),
    ("model.log_eps", float, 0.0),
    ("lock.heartbeat_s", float, 0.0),
    ("lock.stale_after_s", float, 0.0),
    ("finetune.floor_db", float, 0.0),
    ("finetune.max_fit_bins", int, 1),
    # and each objective's own (transfersep.model.objectives: numbers)
]
# at-least (not greater-than) bounds among the float settings: zero is a meaningful value there
_ZERO_ALLOWED = {"loss.alpha", "model.dropout"}

BOOLEAN = (
    "data.generated",
    "dry_run",
    "evaluate",
    "rerun",
    "augment.incoherent",
    "logger.wandb.enabled",
    "trainer.enable_progress_bar",
    "pretrain.dataset.precache",
    "downstream.dataset.precache",
)

CHOICES: dict[str, tuple[str, ...]] = {
    "loss.dc_weights": ("magnitude", "none"),
    "pretrain.dataset.train_mixing": ("coherent", "incoherent"),
    "pretrain.dataset.test_mixing": ("coherent", "incoherent"),
    "downstream.dataset.train_mixing": ("coherent", "incoherent"),
    "downstream.dataset.test_mixing": ("coherent", "incoherent"),
    "pretrain.dataset.stem_lengths": ("error", "pad", "trim"),
    "downstream.dataset.stem_lengths": ("error", "pad", "trim"),
}


def check_config(cfg: Any) -> None:
    """Refuse a setting of the wrong type, range or name, naming the key (``ConfigValueError``)."""
    for key in BOOLEAN:
        value = OmegaConf.select(cfg, key, default=None)
        if value is not None and not isinstance(value, bool):
            raise ConfigValueError(f"{key}={value!r}: expected true or false; give {key}=true or {key}=false")
    from transfersep.model.objectives import entries, names

    for key, choices in {"pretrain.objective": (*names(), "none"), **CHOICES}.items():
        value = OmegaConf.select(cfg, key, default=None)
        if value is not None and value not in choices:
            raise ConfigValueError(f"{key}={value!r}: expected one of {', '.join(choices)}")
    for key, kind, low in NUMERIC:
        _check_number(key, OmegaConf.select(cfg, key, default=None), kind, low)
    for entry in entries():
        for rel, kind, low, zero in entry.numbers:
            key = f"pretrain.{rel}"
            _check_number(key, OmegaConf.select(cfg, key, default=None), kind, low, zero)
    alpha = OmegaConf.select(cfg, "loss.alpha", default=None)
    if alpha is not None and not 0.0 <= float(alpha) <= 1.0:
        raise ConfigValueError(f"loss.alpha={alpha!r}: must be in [0, 1] (the DC share of the chimera loss)")
    dropout = OmegaConf.select(cfg, "model.dropout", default=None)
    if dropout is not None and float(dropout) >= 1.0:
        raise ConfigValueError(f"model.dropout={dropout!r}: must be below 1 (the share of units dropped)")


def _check_number(key: str, value: Any, kind: type, low: float | None, zero: bool = False) -> None:
    if value is None:
        return
    name = "an integer" if kind is int else "a number"
    try:
        if isinstance(value, bool) or (kind is int and isinstance(value, float) and not value.is_integer()):
            raise ValueError
        v = kind(value)
    except (TypeError, ValueError):
        raise ConfigValueError(f"{key}={value!r}: expected {name}; give e.g. {key}={_example(key)}") from None
    strict = kind is float and key not in _ZERO_ALLOWED and not zero  # a zero length, rate or factor is no setting
    if low is not None and (v < low or (strict and v == low)):
        raise ConfigValueError(f"{key}={value!r}: must be {'greater than' if strict else 'at least'} {low}")


def _example(key: str) -> str:
    return {"data.excerpt_seconds": "10.0", "optim.lr": "1e-3", "loss.alpha": "0.01"}.get(
        key, "24" if "batch" in key else "100"
    )
