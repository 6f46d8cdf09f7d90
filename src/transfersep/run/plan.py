"""From a grid point to a run: its stage, phase, budget, directory and parent checkpoint.

Run directories are pure functions of the grid point (never timestamps), so a requeued job finds
its own ``checkpoints/last.ckpt``, a fine-tune job finds its pretrained ``final.ckpt`` and a
relaunched study skips finished runs:

  <runs_dir>/<study>/pretrain/<pretrain>-<augment>/   (<pretrain>: the corpus, with the
                                                        objective's folder suffix, model.objectives)
  <runs_dir>/<study>/finetune/<pretrain>-<augment>-<finetune>-<downstream>/
  <runs_dir>/<study>/baseline/<downstream>/
  <runs_dir>/<study>/zeroshot/<pretrain>-<augment>-<downstream>/   (finetune=zeroshot: no training,
                                                                    the probe of eval.zeroshot)

Fine-tunes and probes from a kept pretraining checkpoint (``pretrain_steps`` other than ``end``,
see ``run.kept``) add ``-<pretrain_steps>`` to their folder; at ``end`` the folders are the above.

Replicates (``REPLICATE_KEYS``): ``seed`` sets every seed a run uses and ``fold`` picks which of the
downstream set's declared folds is its test split. Seed 0 and fold 0 (the paper's single run on
the paper's split) keep the folders above; others add ``-fold<f>`` and ``-seed<s>``, in that order
(``finetune/slakh-none-whole-bach10-fold2-seed1``). A fine-tune or probe of seed ``s`` starts from
the pretraining of seed ``s`` (``pretrain/slakh-none-seed1``): pretraining noise is part of a claim
about pretraining. Pretraining has no test split, so it takes fold 0.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from transfersep.files import FINAL_CKPT, RESULT

# the config groups that make a grid point; their values and the study's stages are written once,
# in sweeps/grid.yaml (read by transfersep.study.grid). ``objective`` is written into the pretrain
# node (pretrain.objective) and names the folder together with the corpus (``pretraining``).
GRID_KEYS = ("pretrain", "augment", "finetune", "downstream", "pretrain_steps", "objective")
# the keys that repeat a grid point (plain integer keys of conf/train.yaml, not config groups): the
# recipe's replicates. A claim about a recipe is made over them; one run supports a claim about
# that trained model only.
REPLICATE_KEYS = ("seed", "fold")
SWEPT_KEYS = GRID_KEYS + REPLICATE_KEYS  # every key sweeps/grid.yaml sweeps


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
    parent_step: int | None = None  # the kept pretraining iteration it starts from (None: final.ckpt)
    keep_steps: tuple[int, ...] = ()  # iterations this run keeps (run.kept): pretraining and baseline

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


def _names(cfg: Any) -> tuple[str, str, str, str, str]:
    steps = cfg.get("pretrain_steps")  # a config without the group is the paper's grid: the end
    return (
        str(cfg.pretrain.name),
        str(cfg.augment.name),
        str(cfg.finetune.name),
        str(cfg.downstream.name),
        str(steps.name) if steps is not None else "end",
    )


def objective_of(cfg: Any) -> str:
    """The run's pretraining objective (``pretrain.objective``; absent: dc)."""
    return str(cfg.pretrain.get("objective") or "dc")


def pretraining(pretrain: str, objective: str = "dc") -> str:
    """How folders and records name the pretraining of corpus ``pretrain`` by ``objective``
    (``slakh`` + ``mixit`` is ``slakh_mixit``; ``model.objectives.run_name``)."""
    from transfersep.model.objectives import run_name

    try:
        return run_name(pretrain, objective)
    except ValueError as e:
        raise PlanError(str(e)) from None


def stage_of(
    pretrain: str, augment: str, finetune: str, downstream: str, pretrain_steps: str = "end", *, fold: int = 0
) -> str:
    stage = _stage_of(pretrain, augment, finetune, downstream)
    if int(fold) < 0:
        raise PlanError(f"fold={fold}: folds are numbered from 0 (0 is the paper's split)")
    if int(fold) != 0 and stage == "pretrain":
        raise PlanError(
            f"fold={fold} with a pretraining run: folds choose a downstream set's test pieces, and "
            "pretraining has none; a pretraining run takes fold=0"
        )
    if pretrain_steps != "end" and stage in ("pretrain", "baseline"):
        raise PlanError(
            f"pretrain_steps={pretrain_steps} with a {stage} run: the axis names the pretraining checkpoint "
            "fine-tunes and probes start from; a pretraining or baseline run takes pretrain_steps=end "
            "(it keeps the iterations of budget.keep_pretrain)"
        )
    return stage


def _stage_of(pretrain: str, augment: str, finetune: str, downstream: str) -> str:
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


def replicate_suffix(seed: int = 0, fold: int = 0) -> str:
    """``-fold<f>-seed<s>`` without the zero parts: the paper's run (seed 0, fold 0) keeps its folder."""
    if int(seed) < 0:
        raise PlanError(f"seed={seed}: replicates are numbered from 0")
    return (f"-fold{int(fold)}" if int(fold) else "") + (f"-seed{int(seed)}" if int(seed) else "")


def subdir_of(
    pretrain: str,
    augment: str,
    finetune: str,
    downstream: str,
    pretrain_steps: str = "end",
    *,
    seed: int = 0,
    fold: int = 0,
    objective: str = "dc",
) -> str:
    stage = stage_of(pretrain, augment, finetune, downstream, pretrain_steps, fold=fold)
    pretrain = pretraining(pretrain, objective) if stage != "baseline" else pretrain
    at = "" if pretrain_steps == "end" else f"-{pretrain_steps}"  # the paper's grid keeps its folders
    rep = replicate_suffix(seed, fold)
    if stage == "pretrain":
        return f"pretrain/{pretrain}-{augment}{rep}"
    if stage == "baseline":
        return f"baseline/{downstream}{rep}"
    if stage == "zeroshot":
        return f"zeroshot/{pretrain}-{augment}-{downstream}{at}{rep}"
    return f"finetune/{pretrain}-{augment}-{finetune}-{downstream}{at}{rep}"


def replicate_of(cfg: Any) -> dict[str, int]:
    """``{"seed": s, "fold": f}`` of a run config (a config without the keys is replicate 0)."""
    return {k: int(cfg.get(k) or 0) for k in REPLICATE_KEYS}


def replicate_fields(seed: int = 0, fold: int = 0) -> dict[str, int]:
    """The replicate keys a grid-point record names: only those not 0, so the paper's records read as before."""
    return {k: int(v) for k, v in (("seed", seed), ("fold", fold)) if int(v)}


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
    pretrain, augment, finetune, downstream, at = _names(cfg)
    rep = replicate_of(cfg)
    stage = stage_of(pretrain, augment, finetune, downstream, at, fold=rep["fold"])
    objective = _check_objective(cfg, stage)
    subdir = subdir_of(pretrain, augment, finetune, downstream, at, **rep, objective=objective)
    study_dir = Path(cfg.paths.runs_dir) / str(cfg.study)
    name = pretraining(pretrain, objective)  # records name the pretraining as its folder does
    gp = {"stage": stage, "pretrain": name, "augment": augment, "finetune": finetune, "downstream": downstream}
    if at != "end":  # absent at the end, so the paper's grid points read as they always did
        gp["pretrain_steps"] = at
    if objective != "dc" and stage != "baseline":
        gp["objective"] = objective
    phase, steps = phase_of(stage, finetune), int(steps_of(stage, cfg.budget))
    keep, parent_step = _kept(cfg, stage, at)
    if stage == "pretrain":
        gp.update(finetune="none", downstream="none")
    gp.update(replicate_fields(**rep))
    if stage in ("pretrain", "baseline"):
        return Plan(stage, phase, gp, subdir, study_dir / subdir, steps, study=str(cfg.study), keep_steps=keep)
    parent_sub = subdir_of(pretrain, augment, "whole", "none", seed=rep["seed"], objective=objective)
    seed_ov = f" seed={rep['seed']}" if rep["seed"] else ""
    obj_ov = f" objective={objective}" if objective != "dc" else ""
    cmd = f"transfersep train pretrain={pretrain}{obj_ov} augment={augment}{seed_ov} study={cfg.study}"
    init_from = cfg.get("init_from")
    if init_from:
        parent_step = None  # the given model replaces the parent run and its kept checkpoints
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
        return subdir_of(*_names(_root_), **replicate_of(_root_), objective=objective_of(_root_))
    except (PlanError, ValueError, TypeError):  # no run: the job refuses it with the one-line reason
        return "invalid/" + "-".join(_names(_root_))


def resolve_run_dir(*, _root_: DictConfig) -> str:
    """``${run_dir:}``: ``<runs_dir>/<study>/<run_subdir>``."""
    return os.path.join(str(_root_.paths.runs_dir), str(_root_.study), resolve_subdir(_root_=_root_))
