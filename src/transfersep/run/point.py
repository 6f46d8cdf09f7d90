"""A grid point: the values of the grid keys that name one run, its stage, folder and parent.

Every part of the tool that speaks of a run of the grid speaks of a ``GridPoint``: the plan of a
run (``run.plan``), the study's grid (``study.grid``), ``transfersep status`` and the report. Its
record in ``status.json`` and ``result.json`` is ``as_dict`` and is read back by ``from_record``.

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

The objective (``objective``, what the pretraining learns by; ``model.objectives``) names the
pretraining together with its corpus, in folders and records alike (``pretraining``): ``slakh`` by
``dc`` is ``slakh``, by ``mixit`` ``slakh_mixit``; a record names the objective beside it when it is
not ``dc``. A baseline has no pretraining, so no objective.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from transfersep.files import KEPT_DIR

# the config groups that make a grid point; their values and the study's stages are written once,
# in sweeps/grid.yaml (read by transfersep.study.grid). ``objective`` is written into the pretrain
# node (pretrain.objective) and names the folder together with the corpus (``pretraining``).
GRID_KEYS = ("pretrain", "augment", "finetune", "downstream", "pretrain_steps", "objective")
# the keys that repeat a grid point (plain integer keys of conf/train.yaml, not config groups): the
# recipe's replicates. A claim about a recipe is made over them; one run supports a claim about
# that trained model only.
REPLICATE_KEYS = ("seed", "fold")
SWEPT_KEYS = GRID_KEYS + REPLICATE_KEYS  # every key sweeps/grid.yaml sweeps
END = "end"  # the pretrain_steps value of the paper's grid: the end of pretraining (final.ckpt)


class PlanError(ValueError):
    """The grid point does not describe a valid run (the message says which key to change)."""


def pretraining(pretrain: str, objective: str = "dc") -> str:
    """How folders and records name the pretraining of corpus ``pretrain`` by ``objective``
    (``slakh`` + ``mixit`` is ``slakh_mixit``; ``model.objectives.run_name``)."""
    from transfersep.model.objectives import run_name

    try:
        return run_name(pretrain, objective)
    except ValueError as e:
        raise PlanError(str(e)) from None


@dataclass(frozen=True)
class GridPoint:
    pretrain: str
    augment: str
    finetune: str
    downstream: str
    pretrain_steps: str = END  # which pretraining checkpoint a fine-tune or probe starts from
    seed: int = 0  # the replicate: every seed of the run
    fold: int = 0  # which declared fold of the downstream set is the test split
    objective: str = "dc"  # what the pretraining learns by (model.objectives)
    # a baseline's score at a kept iteration (run.kept): not a run of its own, a record in its run
    kept_step: int | None = None

    def __post_init__(self) -> None:
        # a pretraining named as folders and records name it (``slakh_mixit``) is its corpus and its
        # objective: one grid point, whichever way the report or a record spells it
        if self.objective == "dc" and self.pretrain != "none":
            from transfersep.model.objectives import split_name

            corpus, objective = split_name(self.pretrain)
            if objective != "dc":
                object.__setattr__(self, "pretrain", corpus)
                object.__setattr__(self, "objective", objective)

    @classmethod
    def baseline(cls, downstream: str, **fields: int) -> GridPoint:
        """The from-scratch baseline of ``downstream`` (``fields``: seed, fold, kept_step)."""
        return cls("none", "none", "whole", downstream, **fields)

    @classmethod
    def zeroshot(
        cls, pretrain: str, augment: str, downstream: str, pretrain_steps: str = END, objective: str = "dc"
    ) -> GridPoint:
        """The zero-shot probe of the pretraining (pretrain, augment, objective) on ``downstream``."""
        return cls(pretrain, augment, "zeroshot", downstream, pretrain_steps, objective=objective)

    @classmethod
    def from_config(cls, cfg: Any, replicates: bool = True) -> GridPoint:
        """The grid point a run config names (a config without ``pretrain_steps`` is the paper's grid:
        the end; without ``seed`` / ``fold``, or with ``replicates`` false, replicate 0; the objective is
        ``pretrain.objective``, absent: dc, and a baseline's is dc: it has no pretraining)."""
        steps = cfg.get("pretrain_steps")
        pretrain = str(cfg.pretrain.name)
        return cls(
            pretrain,
            str(cfg.augment.name),
            str(cfg.finetune.name),
            str(cfg.downstream.name),
            str(steps.name) if steps is not None else END,
            **({k: int(cfg.get(k) or 0) for k in REPLICATE_KEYS} if replicates else {}),
            objective="dc" if pretrain == "none" else str(cfg.pretrain.get("objective") or "dc"),
        )

    @classmethod
    def from_record(cls, gp: dict) -> GridPoint:
        """The grid point of a ``grid_point`` record (``as_dict``; absent keys take the values
        ``as_dict`` leaves out). The record names the pretraining as its folder does, with its
        objective beside it (``slakh_mixit``, ``mixit``); a record without ``objective`` takes the one
        its name says (``model.objectives.split_name``). Raises ``ValueError`` naming a key the
        record lacks, or an unknown objective."""
        for k in ("pretrain", "downstream"):
            if k not in gp:
                raise ValueError(f"grid_point has no '{k}' key (has {sorted(gp)})")
        stage = gp.get("stage") or ("baseline" if gp["pretrain"] == "none" else "finetune")
        if stage == "baseline":
            kept = {"kept_step": int(gp["kept_step"])} if gp.get("kept_step") is not None else {}
            return cls.baseline(str(gp["downstream"]), **_replicate(gp), **kept)
        if stage == "zeroshot" and "augment" not in gp:
            raise ValueError(f"grid_point of a zeroshot run has no 'augment' key (has {sorted(gp)})")
        if stage == "finetune":
            for k in ("augment", "finetune"):
                if k not in gp:
                    raise ValueError(f"grid_point of a finetune run has no '{k}' key (has {sorted(gp)})")
        from transfersep.model.objectives import split_name

        finetune = "zeroshot" if stage == "zeroshot" else str(gp.get("finetune", "whole"))
        steps = str(gp.get("pretrain_steps", END))
        corpus, objective = split_name(str(gp["pretrain"]), gp.get("objective"))
        return cls(
            corpus,
            str(gp.get("augment", "none")),
            finetune,
            str(gp["downstream"]),
            steps,
            **_replicate(gp),
            objective=objective,
        )

    @property
    def pretraining(self) -> str:
        """The pretraining as folders and records name it (``slakh_mixit``; a baseline's: ``none``)."""
        return pretraining(self.pretrain, self.objective)

    @property
    def stage(self) -> str:
        """pretrain | finetune | baseline | zeroshot (``PlanError`` when the point is no run)."""
        stage = _stage_of(self.pretrain, self.augment, self.finetune, self.downstream)
        if int(self.fold) < 0:
            raise PlanError(f"fold={self.fold}: folds are numbered from 0 (0 is the paper's split)")
        if int(self.fold) != 0 and stage == "pretrain":
            raise PlanError(
                f"fold={self.fold} with a pretraining run: folds choose a downstream set's test pieces, and "
                "pretraining has none; a pretraining run takes fold=0"
            )
        if self.kept_step is not None and stage != "baseline":
            raise PlanError(f"kept_step={self.kept_step} with a {stage} run: only a baseline is scored at kept steps")
        if self.pretrain_steps != END and stage in ("pretrain", "baseline"):
            raise PlanError(
                f"pretrain_steps={self.pretrain_steps} with a {stage} run: the axis names the pretraining "
                "checkpoint fine-tunes and probes start from; a pretraining or baseline run takes "
                "pretrain_steps=end (it keeps the iterations of budget.keep_pretrain)"
            )
        return stage

    @property
    def subdir(self) -> str:
        """The run's folder below its study (module docstring)."""
        stage = self.stage
        at = "" if self.pretrain_steps == END else f"-{self.pretrain_steps}"  # the paper's grid keeps its folders
        rep = replicate_suffix(self.seed, self.fold)
        if stage == "baseline":
            kept = "" if self.kept_step is None else f"/{KEPT_DIR}/step-{int(self.kept_step)}"
            return f"baseline/{self.downstream}{rep}{kept}"
        pre = self.pretraining
        if stage == "pretrain":
            return f"pretrain/{pre}-{self.augment}{rep}"
        if stage == "zeroshot":
            return f"zeroshot/{pre}-{self.augment}-{self.downstream}{at}{rep}"
        return f"finetune/{pre}-{self.augment}-{self.finetune}-{self.downstream}{at}{rep}"

    @property
    def recipe(self) -> GridPoint:
        """The same grid point at replicate 0 (seed 0, fold 0): what its replicates repeat."""
        return replace(self, seed=0, fold=0)

    @property
    def parent(self) -> GridPoint | None:
        """The pretraining a fine-tune or probe starts from: the same corpus, objective and
        augmentation, and the same seed (pretraining noise is part of a claim about pretraining); pretraining has no
        fold. Which of its checkpoints is this point's ``pretrain_steps``. None for other stages."""
        if self.stage not in ("finetune", "zeroshot"):
            return None
        return GridPoint(self.pretrain, self.augment, "whole", "none", seed=self.seed, objective=self.objective)

    @property
    def parent_subdir(self) -> str | None:
        parent = self.parent
        return parent.subdir if parent else None

    def as_dict(self) -> dict[str, Any]:
        """The record of ``status.json`` and ``result.json``: the stage and the grid keys, without
        ``pretrain_steps`` at the end and replicate keys at 0 (the paper's records read as they
        always did); a pretraining run has finetune and downstream ``none``. ``pretrain`` names the
        pretraining as its folder does (``slakh_mixit``), with ``objective`` beside it when it is not
        dc; a baseline names neither."""
        stage = self.stage
        d: dict[str, Any] = {"stage": stage, **{k: getattr(self, k) for k in GRID_KEYS}}
        if self.pretrain_steps == END:
            del d["pretrain_steps"]
        d["pretrain"] = self.pretraining if stage != "baseline" else self.pretrain
        if self.objective == "dc" or stage == "baseline":
            del d["objective"]
        if stage == "pretrain":
            d.update(finetune="none", downstream="none")
        d.update(replicate_fields(self.seed, self.fold))
        if self.kept_step is not None:
            d["kept_step"] = int(self.kept_step)
        return d

    def overrides(self) -> list[str]:
        """The overrides that name this point (the objective only when not dc, replicate keys only when not 0)."""
        own = [f"{k}={v}" for k, v in replicate_fields(self.seed, self.fold).items()]
        keys = [k for k in GRID_KEYS if k != "objective" or self.objective != "dc"]
        return [f"{k}={getattr(self, k)}" for k in keys] + own


def _replicate(gp: dict) -> dict[str, int]:
    return {k: int(gp.get(k) or 0) for k in REPLICATE_KEYS}


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


def replicate_fields(seed: int = 0, fold: int = 0) -> dict[str, int]:
    """The replicate keys a grid-point record names: only those not 0, so the paper's records read as before."""
    return {k: int(v) for k, v in (("seed", seed), ("fold", fold)) if int(v)}
