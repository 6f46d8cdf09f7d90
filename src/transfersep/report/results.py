"""Loading the evaluated runs of a study, and the study grid they belong to.

A run is any directory below the scanned study folder that holds a ``result.json`` (written last
by ``evaluate``, so its presence means ``scores.csv`` is complete) with a fine-tune, baseline or
zero-shot grid point; ``scores.csv`` and ``curve.csv`` beside it are optional for the report
(without them a run has its mean but no tests / no curve; without the origin columns of
``scores.csv`` no independent statistics). Pretraining runs are not evaluated; their
``status.json`` only tells which pretrainings the study launched (``pretrain_pairs``).

The grid a study is expected to have is, by default, what it launched (``expected_keys``): the
(pretrain, augment) pairs of its pretraining, fine-tune and zero-shot runs, crossed with the
fine-tune modes it used and its downstream sets, one baseline per downstream set, and one zero-shot
probe per pair and downstream set when the study has any zero-shot run (a study launched without
the zero-shot stage has none).
``study_grid(..., full=True)`` (the report's ``--full-grid``) expects the whole grid of
``sweeps/grid.yaml`` instead, which also gives the order and the names (labels) of every value.
A fine-tune that loaded a model package (``init_from``) is keyed by the pretraining grid point
recorded in that package. ``report.scan`` finds a study's runs (and leaves out stale ones).

Replicates: runs of one grid point at other seeds or folds (``run.point.REPLICATE_KEYS``) share its
key. The key's ``Run`` is its replicate 0 (seed 0, fold 0: the paper's run; or the lowest present),
whose ``replicates`` maps every (fold, seed) found to its run, itself included: the per-model
columns are about that one trained model, the recipe columns about all of them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import pandas as pd

from transfersep.files import CURVE, SCORES, STATUS, read_status
from transfersep.report.blocks import origins_of
from transfersep.report.scores import excerpt_scores, read_scores
from transfersep.run.point import GridPoint
from transfersep.study.grid import load_grid


def axis(name: str) -> tuple[str, ...]:
    """The values of a grid key in the grid's order (``sweeps/grid.yaml``); ``pretrain``: the
    pretrainings as records name them, corpus and objective (``Grid.pretrainings``)."""
    grid = load_grid()
    return grid.pretrainings if name == "pretrain" else grid.axes[name]


@lru_cache(maxsize=64)
def supervised_twin(pretrain: str) -> str | None:
    """The grid's supervised pretraining on the audio a pretraining that reads no stems reads (the same
    corpus by dc: slakh for slakh_mixit), or None (a supervised value, or no such pretraining on the grid)."""
    from transfersep.model import objectives

    corpus, objective = objectives.split_name(pretrain)
    if objectives.get(objective).reads_stems:
        return None
    return corpus if corpus in axis("pretrain") else None


def zeroshot_label() -> str:
    """How the report names the zero-shot probe (the label of ``finetune=zeroshot``)."""
    return label("finetune", "zeroshot")


# a run's grid point at replicate 0 (``GridPoint.recipe``): its replicates share it
Key = GridPoint


# what a corpus of the report being written was made of where it was not the dataset itself:
# (axis, value) -> "generated" | "demo corpus" (``report.header.data_kinds``, set by ``build``), so
# that no figure or table calls generated tones "Slakh"
DATA_KINDS: dict[tuple[str, str], str] = {}
KIND_SUFFIX = {"generated": " (generated audio)", "demo corpus": " (rendered demo corpus)"}


def label(axis_name: str, value: str) -> str:
    """How figures and tables name ``value`` of a grid key (pretrain=none: "No pretraining"), with
    what its audio was when it was not the real dataset (``DATA_KINDS``)."""
    return load_grid().label(axis_name, value) + KIND_SUFFIX.get(DATA_KINDS.get((axis_name, value), ""), "")


def run_key(gp: dict) -> Key:
    """The identity of a grid point record in the study (replicates share it)."""
    stage = gp.get("stage") or ("baseline" if gp.get("pretrain") == "none" else "finetune")
    if stage not in ("baseline", "zeroshot", "finetune") and {"pretrain", "downstream"} <= set(gp):
        raise ValueError(f"stage '{stage}' is not evaluated (only finetune, baseline and zeroshot runs are)")
    return GridPoint.from_record(gp).recipe


def at_end(gp: dict) -> bool:
    """A grid point of the paper's grid: fine-tuned or probed from the end of pretraining. Runs from
    kept pretraining checkpoints and a baseline's scores at kept steps are Figure 4's (``report.length``)."""
    return gp.get("pretrain_steps", "end") == "end" and "kept_step" not in gp


def key_name(key: Key) -> str:
    """Run-directory style name: ``baseline/bach10``, ``finetune/musdb-none-whole-bach10`` or
    ``zeroshot/musdb-none-bach10``."""
    return key.subdir


def describe_key(key: Key) -> str:
    """A reader's name of the model: ``Slakh, no augmentation, whole → Bach10``."""
    d = label("downstream", key.downstream)
    if key.stage == "baseline":
        return f"from scratch → {d}"
    p, a = label("pretrain", key.pretraining), label("augment", key.augment).lower()
    how = zeroshot_label() if key.stage == "zeroshot" else label("finetune", key.finetune)
    return f"{p}, {a}, {how} → {d}"


Replicate = tuple  # (fold, seed)


def replicate_key(gp: dict) -> Replicate:
    """``(fold, seed)`` of a grid point record (absent keys: 0, the paper's run)."""
    return (int(gp.get("fold") or 0), int(gp.get("seed") or 0))


@dataclass
class Run:
    dir: Path
    rel: str  # path relative to the scanned root
    key: Key
    result: dict
    excerpts: pd.Series | None = None  # per-excerpt mean SI-SDR indexed by excerpt id
    origins: pd.DataFrame | None = None  # excerpt, source, track, start_s, seconds (blocks.origins_of)
    curve: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)
    replicates: dict = field(default_factory=dict)  # (fold, seed) -> Run of this key, itself included

    @property
    def replicate(self) -> Replicate:
        return replicate_key(self.result.get("grid_point") or {})

    @property
    def replicate_means(self) -> dict:
        """(fold, seed) -> mean SI-SDR of each replicate that has one."""
        reps = self.replicates or {self.replicate: self}
        return {r: run.mean for r, run in sorted(reps.items()) if run.mean is not None}

    @property
    def test_train(self) -> float | None:
        """n_test / n_train tracks of this run's split (``extra.split``), or None when not recorded."""
        split = (self.result.get("extra") or {}).get("split") or {}
        n_train, n_test = split.get("train_tracks"), split.get("test_tracks")
        return float(n_test) / float(n_train) if n_train and n_test else None

    @property
    def mean(self) -> float | None:
        m = (self.result.get("overall") or {}).get("mean")
        return None if m is None or (isinstance(m, float) and math.isnan(m)) else float(m)

    @property
    def floor(self) -> float | None:
        """The SI-SDR of the mixture as every source's estimate, as a zero-shot probe records it."""
        v = (self.result.get("extra") or {}).get("mixture_as_estimate_sisdr")
        return float(v) if isinstance(v, (int, float)) and not math.isnan(v) else None

    @property
    def downstream(self) -> str:
        return self.key.downstream


def load_run(result_path: Path, root: Path) -> Run:
    with open(result_path, encoding="utf-8") as f:
        result = json.load(f)
    if not isinstance(result, dict) or not isinstance(result.get("grid_point"), dict):
        raise ValueError("no 'grid_point' object")
    run = Run(
        dir=result_path.parent,
        rel=str(result_path.parent.relative_to(root)) or ".",
        key=run_key(result["grid_point"]),
        result=result,
    )
    _key_by_loaded_package(run)
    scores = run.dir / SCORES
    if scores.exists():
        table = read_scores(scores)
        run.excerpts = excerpt_scores(table)
        run.origins = origins_of(table)
    else:
        run.notes.append("no scores.csv: no significance tests")
    curve = run.dir / CURVE
    if curve.exists():
        df = pd.read_csv(curve)
        if {"step", "sisdr_db"} <= set(df.columns):
            run.curve = df.sort_values("step")
        else:
            run.notes.append("curve.csv lacks step/sisdr_db columns")
    return run


def _key_by_loaded_package(run: Run) -> None:
    """An ``init_from`` fine-tune is the fine-tune of the pretraining its package records."""
    parent = (run.result.get("extra") or {}).get("parent")
    if run.key.stage != "finetune" or not isinstance(parent, dict) or parent.get("kind") == "run":
        return
    gp = parent.get("grid_point") or {}
    if gp.get("stage") != "pretrain" or not {"pretrain", "augment"} <= set(gp):
        run.notes.append(
            f"loaded {parent.get('path')}, which records no pretraining grid point: "
            f"labelled by its pretrain={run.key.pretraining} augment={run.key.augment}"
        )
        return
    from transfersep.model.objectives import split_name

    corpus, objective = split_name(str(gp["pretrain"]), gp.get("objective"))  # as the package's record names it
    run.key = replace(run.key, pretrain=corpus, objective=objective, augment=str(gp["augment"]))
    own = (run.result.get("extra") or {}).get("study")
    if parent.get("study") and parent["study"] != own:
        run.notes.append(f"built on {gp['pretrain']}-{gp['augment']} of study {parent['study']} (init_from)")


def downstream_order(names) -> list[str]:
    """The grid's downstream sets among ``names`` in its order, then any others by name."""
    names, grid = set(names), axis("downstream")
    return [d for d in grid if d in names] + sorted(names - set(grid))


def pretrain_pairs(study_dir: Path, runs: dict[Key, Run]) -> list[tuple[str, str]]:
    """The (pretrain, augment) pairs the study launched: its pretraining run directories (their
    ``status.json`` grid point) and the pairs its fine-tune and zero-shot runs name, in paper order."""
    pairs = {(k.pretraining, k.augment) for k in runs if k.stage in ("finetune", "zeroshot")}
    for f in sorted(Path(study_dir).glob(f"pretrain/*/{STATUS}")):
        try:
            gp = (read_status(f.parent) or {}).get("grid_point") or {}
        except (OSError, AttributeError):
            continue
        if gp.get("pretrain") and gp.get("augment"):
            pairs.add((str(gp["pretrain"]), str(gp["augment"])))
    rank = {pa: i for i, pa in enumerate(grid_pairs())}
    return sorted(pairs, key=lambda pa: (rank.get(pa, len(rank)), pa))


def grid_pairs() -> list[tuple[str, str]]:
    """Every (pretrain, augment) pair of the grid, in its order (less the ones it excludes)."""
    grid = load_grid()
    return [
        (c, a) for c in axis("pretrain") for a in axis("augment") if not grid.excluded({"pretrain": c, "augment": a})
    ]


def expected_keys(
    downstreams: list[str],
    pairs: list[tuple[str, str]] | None = None,
    finetunes: list[str] | tuple | None = None,
    zeroshot: bool = False,
) -> list[Key]:
    """The grid for these downstream sets: one from-scratch baseline each, a fine-tune per
    (pretrain, augment) pair of ``pairs`` (default: the grid's corpora x augmentations) and
    mode of ``finetunes`` (default: the grid's), and, with ``zeroshot``, a zero-shot probe per pair."""
    pairs = grid_pairs() if pairs is None else pairs
    finetunes = axis("finetune") if finetunes is None else finetunes
    keys: list[Key] = []
    for d in downstreams:
        keys.append(GridPoint.baseline(d))
        keys += [GridPoint(c, a, f, d) for c, a in pairs for f in finetunes]
        if zeroshot:
            keys += [GridPoint.zeroshot(c, a, d) for c, a in pairs]
    return keys


def study_grid(study_dir: Path, runs: dict[Key, Run], downstreams: list[str], full: bool = False) -> list[Key]:
    """What the study is expected to hold (see the module docstring)."""
    zs = any(k.stage == "zeroshot" for k in runs)
    if full:
        return expected_keys(downstreams, zeroshot=zs)
    modes, grid = {k.finetune for k in runs if k.stage == "finetune"}, axis("finetune")
    finetunes = [f for f in grid if f in modes] + sorted(modes - set(grid)) or list(grid)
    return expected_keys(downstreams, pretrain_pairs(study_dir, runs), finetunes, zs)


def missing_keys(runs: dict[Key, Run], expected: list[Key]) -> list[Key]:
    return [k for k in expected if k not in runs]
