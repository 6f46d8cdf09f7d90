"""Datasets, mixing and augmentation behind one DataModule (see ``base.py`` for the contract)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # lightning is imported lazily so `python -m transfersep.data` starts fast
    from omegaconf import DictConfig

    from transfersep.data.base import SeparationDataModule

__all__ = ["SeparationDataModule", "build_datamodule"]


def __getattr__(name: str):
    if name == "SeparationDataModule":
        from transfersep.data.base import SeparationDataModule

        return SeparationDataModule
    raise AttributeError(name)


def build_datamodule(cfg: DictConfig, stage: str, total_steps: int) -> SeparationDataModule:
    """The DataModule of a run: ``stage`` is pretrain | finetune | baseline.

    Pretraining reads ``cfg.pretrain.dataset`` with ``cfg.augment``; fine-tuning and baselines read
    ``cfg.downstream.dataset`` (no augmentation: the paper augments pretraining only).
    ``cfg.data.generated=true`` serves generated excerpts with the same source names instead.
    ``cfg.pretrain.objective`` shapes the pretraining items: dc {"mix", "sources": [C, N]}; mixit
    {"mix", "sources": [2, N]} (two gained mixtures); bootstrap {"mix", "sources": [1, N]}.
    """
    from transfersep.data.registry import pretrain_objective

    objective = pretrain_objective(cfg, stage)
    ds_cfg = cfg.pretrain.dataset if stage == "pretrain" else cfg.downstream.dataset
    d = cfg.data
    if d.generated:
        from transfersep.data import generated

        dm = generated.build(
            list(ds_cfg.sources),
            d.excerpt_seconds,
            d.batch_size,
            total_steps,
            int(cfg.seed),
            d.n_val,
            d.n_test,
            d.num_workers,
            objective=objective,
            gain_db=float(cfg.pretrain.mixit.gain_db) if objective == "mixit" else 0.0,
        )
    else:
        from transfersep.data.registry import build_real

        dm = build_real(cfg, stage, total_steps)
    if objective == "bootstrap":  # labels from primitive grouping cues (cfg.pretrain.bootstrap)
        from transfersep.data.bootstrap import add_labels

        add_labels(dm, cfg.pretrain.get("bootstrap"))
    return dm
