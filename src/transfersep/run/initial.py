"""The model a run starts from: a fresh ChimeraNet for its phase, or the pretrained backbone and
embedding head of its parent with a new mask head (fine-tunes and the zero-shot probe)."""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from transfersep.run.plan import Plan


def build_system(cfg: DictConfig, plan: Plan, source_names: list[str]):
    from transfersep.model.system import SeparationSystem

    return SeparationSystem(
        model=OmegaConf.to_container(cfg.model, resolve=True),
        phase=plan.phase,
        source_names=source_names,
        alpha=cfg.loss.alpha,
        dc_weights=cfg.loss.dc_weights,
        lr=cfg.optim.lr,
        autoclip_percentile=cfg.optim.autoclip_percentile,
        plateau_patience_steps=cfg.optim.plateau_patience_steps,
        plateau_factor=cfg.optim.plateau_factor,
        val_every_n_steps=cfg.val_every_n_steps,
        objective=str(cfg.pretrain.get("objective") or "dc") if plan.phase == "pretrain" else "dc",
    )


def load_pretrained(system, ckpt: Path) -> str:
    """Backbone and embedding head from a pretraining checkpoint or model package; a fresh mask head.
    The network is built from the file (its header's sizes); a run whose model config contradicts
    them is refused first (``errors.ModelSizeError``). Returns the digest of the loaded weights
    (``model.package.weights_digest``)."""
    from transfersep.model.package import ModelLoadError, load_model, weights_digest
    from transfersep.run.errors import CheckpointError, check_sizes

    check_sizes(ckpt, system.model.cfg.to_dict(), "the pretrained model", "run with the sizes it was trained with")
    try:
        model_state = load_model(ckpt, device="cpu").net.state_dict()
        system.model.load_flexible(model_state, keep_mask_head=False)
    except (ModelLoadError, ValueError) as e:
        raise CheckpointError(f"{ckpt}: {e}" if str(ckpt) not in str(e) else str(e)) from e
    system.apply_phase()
    return weights_digest(model_state)


def run_device(cfg: DictConfig) -> torch.device:
    """The device the run's trainer puts the model on (``trainer.accelerator``): ``cpu``; ``gpu``/``cuda``
    (the first GPU); ``auto``: a GPU when torch sees one, else the CPU. Work done outside the trainer
    (the zero-shot probe) runs there too."""
    from transfersep.run.plan import PlanError

    acc = str(cfg.trainer.get("accelerator", "auto")).lower()
    if acc == "cpu" or (acc == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if acc in ("gpu", "cuda", "auto"):
        if not torch.cuda.is_available():
            raise PlanError(
                f"trainer.accelerator={acc} but torch sees no CUDA device here; use trainer=cpu "
                "(or trainer.accelerator=auto) on this machine"
            )
        return torch.device("cuda")
    raise PlanError(f"trainer.accelerator={acc}: runs use cpu, gpu (cuda) or auto; set trainer.accelerator to one")
