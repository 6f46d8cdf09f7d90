"""From a grid point to a run: its stage, phase, budget, directory and parent checkpoint.

Run directories are pure functions of the grid point (never timestamps), so a requeued job finds
its own ``checkpoints/last.ckpt``, a fine-tune job finds its pretrained ``final.ckpt`` and a
relaunched study skips finished runs:

  <runs_dir>/<study>/pretrain/<pretrain>-<augment>/
  <runs_dir>/<study>/finetune/<pretrain>-<augment>-<finetune>-<downstream>/
  <runs_dir>/<study>/baseline/<downstream>/
  <runs_dir>/<study>/zeroshot/<pretrain>-<augment>-<downstream>/   (finetune=zeroshot: no training,
                                                                    the probe of eval.zeroshot)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from transfersep.files import FINAL_CKPT, RESULT

# the config groups that make a grid point; their values and the study's stages are written once,
# in sweeps/grid.yaml (read by transfersep.study.grid)
GRID_KEYS = ("pretrain", "augment", "finetune", "downstream")


def done_file(stage: str) -> str:
    """The file whose presence (with status "finished") says a run of ``stage`` is complete:
    the final checkpoint of a training run, the result of the zero-shot probe (which trains nothing)."""
    return RESULT if stage == "zeroshot" else FINAL_CKPT


class PlanError(ValueError):
    """The grid point does not describe a valid run (the message says which key to change)."""


@dataclass
class Plan:
    stage: str  # pretrain | finetune | baseline | zeroshot
    phase: str  # pretrain | whole | mask | zeroshot
    grid_point: dict[str, str]
    subdir: str
    run_dir: Path
    total_steps: int
    parent_dir: Path | None = None
    parent_command: str | None = None
    init_from: Path | None = None  # a model package or checkpoint that replaces the parent run
    study: str | None = None
    parent: dict[str, Any] | None = None  # what a fine-tune loads (provenance.identity), once known
    model: dict[str, Any] | None = None  # the run's model config, checked against its parent's sizes

    @property
    def parent_ckpt(self) -> Path | None:
        if self.init_from is not None:
            return self.init_from
        return self.parent_dir / FINAL_CKPT if self.parent_dir else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "phase": self.phase,
            "grid_point": self.grid_point,
            "run_dir": str(self.run_dir),
            "total_steps": self.total_steps,
            "parent_ckpt": str(self.parent_ckpt) if self.parent_ckpt else None,
        }


def _names(cfg: Any) -> tuple[str, str, str, str]:
    return (str(cfg.pretrain.name), str(cfg.augment.name), str(cfg.finetune.name), str(cfg.downstream.name))


def stage_of(pretrain: str, augment: str, finetune: str, downstream: str) -> str:
    if pretrain == "none" and downstream == "none":
        raise PlanError(
            "pretrain=none downstream=none is no run: choose a pretraining corpus, a downstream set, or both"
        )
    if downstream == "none":
        return "pretrain"
    if pretrain == "none":
        if augment != "none":
            raise PlanError(
                f"augment={augment} with pretrain=none: augmentation applies to pretraining only; "
                "a baseline takes augment=none"
            )
        if finetune != "whole":
            if finetune == "zeroshot":
                raise PlanError(
                    "finetune=zeroshot with pretrain=none: the zero-shot probe clusters a "
                    "pretrained model's embeddings; choose a pretraining corpus"
                )
            raise PlanError(
                f"finetune={finetune} with pretrain=none: a from-scratch baseline trains every "
                "weight (finetune=whole); mask-only training needs a pretrained model"
            )
        return "baseline"
    return "zeroshot" if finetune == "zeroshot" else "finetune"


def subdir_of(pretrain: str, augment: str, finetune: str, downstream: str) -> str:
    stage = stage_of(pretrain, augment, finetune, downstream)
    if stage == "pretrain":
        return f"pretrain/{pretrain}-{augment}"
    if stage == "baseline":
        return f"baseline/{downstream}"
    if stage == "zeroshot":
        return f"zeroshot/{pretrain}-{augment}-{downstream}"
    return f"finetune/{pretrain}-{augment}-{finetune}-{downstream}"


def phase_of(stage: str, finetune: str) -> str:
    """What a run of ``stage`` trains: pretraining (DC only), every weight (a baseline trains like
    a whole-model), or the fine-tune mode (``whole`` | ``mask``; ``zeroshot`` trains nothing)."""
    return {"pretrain": "pretrain", "baseline": "whole"}.get(stage, finetune)


def steps_of(stage: str, budget: Any) -> int:
    """Optimizer steps of a run of ``stage`` under ``cfg.budget`` (the zero-shot probe takes none)."""
    return {"pretrain": budget.pretrain, "baseline": budget.baseline, "zeroshot": 0}.get(stage, budget.finetune)


def make_plan(cfg: DictConfig) -> Plan:
    from transfersep.model.schedule import ScheduleError, plateau_patience

    try:  # refused before anything is written, dry runs included
        plateau_patience(cfg.optim.plateau_patience_steps, cfg.val_every_n_steps)
    except ScheduleError as e:
        raise PlanError(str(e)) from None
    pretrain, augment, finetune, downstream = _names(cfg)
    stage = stage_of(pretrain, augment, finetune, downstream)
    subdir = subdir_of(pretrain, augment, finetune, downstream)
    study_dir = Path(cfg.paths.runs_dir) / str(cfg.study)
    gp = {"stage": stage, "pretrain": pretrain, "augment": augment, "finetune": finetune, "downstream": downstream}
    phase, steps = phase_of(stage, finetune), int(steps_of(stage, cfg.budget))
    if stage == "pretrain":
        gp.update(finetune="none", downstream="none")
    if stage in ("pretrain", "baseline"):
        return Plan(stage, phase, gp, subdir, study_dir / subdir, steps, study=str(cfg.study))
    parent_sub = subdir_of(pretrain, augment, "whole", "none")
    cmd = f"transfersep train pretrain={pretrain} augment={augment} study={cfg.study}"
    init_from = cfg.get("init_from")
    if init_from:
        cmd = f"(init_from={init_from} was given: point it at an existing .safetensors model or .ckpt)"
    return Plan(
        stage,
        phase,
        gp,
        subdir,
        study_dir / subdir,
        steps,
        parent_dir=study_dir / parent_sub,
        parent_command=cmd,
        init_from=Path(init_from).expanduser().resolve() if init_from else None,
        study=str(cfg.study),
        model=dict(OmegaConf.to_container(cfg.model, resolve=True)),
    )


def resolve_subdir(*, _root_: DictConfig) -> str:
    """``${run_subdir:}``: the run's folder below the study (registered by ``run.config``)."""
    try:
        return subdir_of(*_names(_root_))
    except PlanError:  # no run: the job itself refuses it with the one-line reason (and leaves nothing)
        return "invalid/" + "-".join(_names(_root_))


def resolve_run_dir(*, _root_: DictConfig) -> str:
    """``${run_dir:}``: ``<runs_dir>/<study>/<run_subdir>``."""
    return os.path.join(str(_root_.paths.runs_dir), str(_root_.study), resolve_subdir(_root_=_root_))
