"""Datasets, mixing and augmentation behind one DataModule (see ``base.py`` for the contract)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # lightning is imported lazily so `python -m transfersep.data` starts fast
    from omegaconf import DictConfig

    from transfersep.data.base import SeparationDataModule

__all__ = ["SeparationDataModule", "build_datamodule"]


def __getattr__(name: str):
    if name == "SeparationDataModule":
        from transfersep.data.base import SeparationDataModule

        return SeparationDataModule
    raise AttributeError(name)


def build_datamodule(cfg: DictConfig, stage: str, total_steps: int, objective: Any = None) -> SeparationDataModule:
    """The DataModule of a run: ``stage`` is pretrain | finetune | baseline.

    Pretraining reads ``cfg.pretrain.dataset`` with ``cfg.augment``; fine-tuning and baselines read
    ``cfg.downstream.dataset`` (no augmentation: the paper augments pretraining only).
    ``cfg.data.generated=true`` serves generated excerpts with the same source names instead.

    ``objective``, the pretraining objective's entry (``transfersep.model.objectives``; None: the
    stems), shapes the pretraining items by its ``items`` (one of ``registry.ITEMS``): stems {"mix",
    "sources": [C, N]}; pairs {"mix", "sources": [2, N]} (two gained mixtures); grouped {"mix",
    "sources": [1, N]} with labels from primitive grouping cues (``data.bootstrap``). Its
    ``reads_stems`` false reads the corpus as mixtures only; its settings are
    ``cfg.pretrain.<its name>``. Fine-tuning and baselines always get the stems.
    """
    from transfersep.data.registry import pretrain_items, refuse_unlabeled_key

    items, _, settings = pretrain_items(cfg, stage, objective)
    ds_cfg = cfg.pretrain.dataset if stage == "pretrain" else cfg.downstream.dataset
    refuse_unlabeled_key(ds_cfg)
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
            items=items,
            gain_db=float(settings.gain_db) if items == "pairs" else 0.0,
        )
    else:
        from transfersep.data.registry import build_real

        dm = build_real(cfg, stage, total_steps, objective)
    if items == "grouped":  # labels from primitive grouping cues (the objective's settings)
        from transfersep.data.bootstrap import add_labels

        add_labels(dm, settings)
    return dm
