"""The model a run starts from: a fresh ChimeraNet for its phase, or the pretrained backbone and
embedding head of its parent with a new mask head (fine-tunes and the zero-shot probe).

A pretraining learns by ``pretrain.objective`` (``transfersep.model.objectives``); an objective whose
mask head has outputs of its own (MixIT: ``output1 .. outputM``) names the model's sources by them,
not by the datamodule's references. Fine-tunes and baselines train as ever, whatever their parent's
objective was."""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from transfersep.run.plan import Plan


def build_system(cfg: DictConfig, plan: Plan, source_names: list[str]):
    from transfersep.model import objectives
    from transfersep.model.system import SeparationSystem
    from transfersep.run.errors import ConfigValueError

    objective, own = "dc", {}
    if plan.phase == "pretrain":
        try:
            entry = objectives.of_config(cfg)
            given = objectives.settings(cfg, entry)
            if entry.outputs is not None:
                source_names = entry.outputs(given)
        except ValueError as e:
            raise ConfigValueError(str(e)) from None
        objective = entry.name
        own = {entry.name: given} if entry.name in entry.records else {}  # settings kept as hyperparameters
    return SeparationSystem(
        model=OmegaConf.to_container(cfg.model, resolve=True),
        phase=plan.phase,
        source_names=source_names,
        objective=objective,
        **own,
        alpha=cfg.loss.alpha,
        dc_weights=cfg.loss.dc_weights,
        lr=cfg.optim.lr,
        autoclip_percentile=cfg.optim.autoclip_percentile,
        plateau_patience_steps=cfg.optim.plateau_patience_steps,
        plateau_factor=cfg.optim.plateau_factor,
        val_every_n_steps=cfg.val_every_n_steps,
    )


def load_parent(ckpt: Path, model: dict):
    """The pretrained model file ``ckpt`` (checkpoint or package) as a ``model.package.LoadedModel`` on
    the CPU, built from the file (its header's sizes, its own mask head and ``objective``); a run whose
    ``model`` config contradicts those sizes is refused first (``errors.ModelSizeError``)."""
    from transfersep.model.loading import load_model
    from transfersep.model.package import ModelLoadError
    from transfersep.run.errors import CheckpointError
    from transfersep.run.parent import check_sizes

    check_sizes(ckpt, model, "the pretrained model", "run with the sizes it was trained with")
    try:
        return load_model(ckpt, device="cpu")
    except ModelLoadError as e:
        raise CheckpointError(f"{ckpt}: {e}" if str(ckpt) not in str(e) else str(e)) from e


def load_pretrained(system, ckpt: Path, parent=None) -> str:
    """Backbone and embedding head from a pretraining checkpoint or model package; a fresh mask head
    (whatever the parent's: C sources of a DC model, M outputs of a MixIT one). ``parent``: the file
    already loaded by ``load_parent``. Returns the digest of the loaded weights
    (``model.package.weights_digest``)."""
    from transfersep.model.package import weights_digest
    from transfersep.run.errors import CheckpointError

    parent = parent if parent is not None else load_parent(ckpt, system.model.cfg.to_dict())
    model_state = parent.net.state_dict()
    try:
        system.model.load_flexible(model_state, keep_mask_head=False)
    except ValueError as e:
        raise CheckpointError(f"{ckpt}: {e}" if str(ckpt) not in str(e) else str(e)) from e
    system.apply_phase()
    return weights_digest(model_state)


def run_device(cfg: DictConfig) -> torch.device:
    """The device the run's trainer puts the model on (``trainer.accelerator``): ``cpu``; ``gpu``/``cuda``
    (the first GPU); ``auto``: a GPU when torch sees one, else the CPU. Work done outside the trainer
    (the zero-shot probe) runs there too."""
    from transfersep.run.point import PlanError

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
