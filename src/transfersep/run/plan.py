"""From a grid point (``run.point``) to a run: its stage, phase, budget, directory and parent checkpoint.

A run's folder and its parent follow from its grid point (``GridPoint.subdir``, ``GridPoint.parent``);
the plan adds what the config decides: the budget, the kept checkpoints and which of them a
fine-tune or probe starts from, or a model file (``init_from``) that replaces the parent run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from transfersep.files import FINAL_CKPT, RESULT
from transfersep.run.point import GRID_KEYS, GridPoint, PlanError


def done_file(stage: str) -> str:
    """The file whose presence (with status "finished") says a run of ``stage`` is complete:
    the final checkpoint of a training run, the result of the zero-shot probe (which trains nothing)."""
    return RESULT if stage == "zeroshot" else FINAL_CKPT


@dataclass
class Plan:
    point: GridPoint
    phase: str  # pretrain | whole | mask | zeroshot
    run_dir: Path
    total_steps: int
    parent_dir: Path | None = None
    init_from: Path | None = None  # a model package or checkpoint that replaces the parent run
    study: str | None = None
    parent: dict[str, Any] | None = None  # what a fine-tune loads (provenance.identity), once known
    model: dict[str, Any] | None = None  # the run's model config, checked against its parent's sizes
    parent_step: int | None = None  # the kept pretraining iteration it starts from (None: final.ckpt)
    keep_steps: tuple[int, ...] = ()  # iterations this run keeps (run.kept): pretraining and baseline

    @property
    def stage(self) -> str:  # pretrain | finetune | baseline | zeroshot
        return self.point.stage

    @property
    def subdir(self) -> str:
        return self.point.subdir

    @property
    def grid_point(self) -> dict[str, Any]:
        """The grid point's record (``status.json``, ``result.json``, the package)."""
        return self.point.as_dict()

    @property
    def parent_ckpt(self) -> Path | None:
        if self.init_from is not None:
            return self.init_from
        if self.parent_dir and self.parent_step is not None:
            from transfersep.run.kept import kept_ckpt

            return kept_ckpt(self.parent_dir, self.parent_step)
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


def objective_of(cfg: Any) -> str:
    """The run's pretraining objective (``pretrain.objective``; absent: dc)."""
    return str(cfg.pretrain.get("objective") or "dc")


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
    point = GridPoint.from_config(cfg)
    stage = point.stage
    _check_objective(cfg, stage)
    study_dir = Path(cfg.paths.runs_dir) / str(cfg.study)
    run_dir = study_dir / point.subdir
    phase, steps = phase_of(stage, point.finetune), int(steps_of(stage, cfg.budget))
    keep, parent_step = _kept(cfg, stage, point.pretrain_steps)
    if stage in ("pretrain", "baseline"):
        return Plan(point, phase, run_dir, steps, study=str(cfg.study), keep_steps=keep)
    init_from = cfg.get("init_from")
    if init_from:
        parent_step = None  # the given model replaces the parent run and its kept checkpoints
    return Plan(
        point,
        phase,
        run_dir,
        steps,
        parent_dir=study_dir / point.parent.subdir,
        init_from=Path(init_from).expanduser().resolve() if init_from else None,
        study=str(cfg.study),
        model=dict(OmegaConf.to_container(cfg.model, resolve=True)),
        parent_step=parent_step,
    )


def _check_objective(cfg: DictConfig, stage: str) -> str:
    """The run's objective, refused in one line where no run can have it: an unknown one, or one
    whose pretraining the grid cannot have (``model.objectives.excluded``)."""
    from transfersep.model import objectives

    objective = objective_of(cfg)
    try:
        objectives.get(objective)
    except ValueError as e:
        raise PlanError(str(e)) from None
    aug = cfg.get("augment")
    why = objectives.excluded(objective, bool(aug.get("incoherent")) if aug is not None else False)
    if why and stage != "baseline":
        raise PlanError(f"augment={cfg.augment.name} with objective={objective}: {why}")
    return objective


def check_objective_choice(cfg: DictConfig, chosen: str | None) -> None:
    """Refuse an objective set by ``pretrain.objective=`` against the ``objective`` group Hydra
    composed (``chosen``): the group brings the objective's settings, and the folder follows it."""
    objective = objective_of(cfg)
    if chosen is not None and str(chosen) != objective:
        raise PlanError(
            f"pretrain.objective={objective} with objective={chosen}: the objective is chosen by its group, "
            f"which brings its settings; write objective={objective}"
        )


def _kept(cfg: DictConfig, stage: str, at: str) -> tuple[tuple[int, ...], int | None]:
    """What a run keeps (``run.kept``), and the kept pretraining step a fine-tune or probe starts from."""
    from transfersep.run.kept import KeepError, axis_step, baseline_steps, kept_steps

    budget = cfg.budget
    try:
        pre = kept_steps(budget.get("keep_pretrain"), int(budget.pretrain))
        if stage == "pretrain":
            return tuple(pre), None
        if stage == "baseline":
            return tuple(baseline_steps(pre, int(budget.pretrain), int(budget.finetune))), None
        step = axis_step(cfg.get("pretrain_steps"), int(budget.pretrain))
    except KeepError as e:
        raise PlanError(str(e)) from None
    if step >= int(budget.pretrain):
        return (), None
    if step not in pre:
        raise PlanError(
            f"pretrain_steps={at} starts from pretraining step {step}, which budget.keep_pretrain="
            f"{list(budget.get('keep_pretrain') or [])} does not keep: add it to budget.keep_pretrain "
            "(and train the pretraining again with rerun=true, or choose a kept value)"
        )
    return (), step


def resolve_subdir(*, _root_: DictConfig) -> str:
    """``${run_subdir:}``: the run's folder below the study (registered by ``run.config``)."""
    try:
        return GridPoint.from_config(_root_).subdir
    except (PlanError, ValueError, TypeError):  # no run: the job refuses it with the one-line reason
        gp = GridPoint.from_config(_root_, replicates=False)  # a replicate key may be what is wrong
        return "invalid/" + "-".join(str(getattr(gp, k)) for k in GRID_KEYS if k != "objective")


def resolve_run_dir(*, _root_: DictConfig) -> str:
    """``${run_dir:}``: ``<runs_dir>/<study>/<run_subdir>``."""
    return os.path.join(str(_root_.paths.runs_dir), str(_root_.study), resolve_subdir(_root_=_root_))
