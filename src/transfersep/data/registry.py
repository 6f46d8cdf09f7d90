"""Dataset names -> loaders, and the DataModule of a run (``build_real``).

``build_index(name, roots, sources, **options)`` indexes one dataset as its declaration in
``loaders`` says (its loader, default sources, roots and options: the loader keys of
``conf/pretrain/<name>.yaml`` / ``conf/downstream/<name>.yaml``, see each loader's docstring; a
speech + music corpus, ``librimix_slakh``, is built in combined.py).
``build_real(cfg, stage, total_steps)`` wires index, cache, mixing and augmentation:

- pretrain: ``cfg.pretrain.dataset`` with ``cfg.augment`` (``augment.incoherent`` switches the
  training stream to incoherent mixing); finetune / baseline: ``cfg.downstream.dataset``, no
  augmentation, training mixed as ``train_mixing``;
- validation and test excerpts are mixed as ``test_mixing``, chosen by ``data.eval_seed``
  (``data.n_val`` / ``data.n_test`` of them); a dataset without validation tracks (Bach10,
  stem folders without ``valid/``) draws its validation excerpts from the training tracks;
- ``precache: true`` fills the 16 kHz cache of every used track before training starts (small
  downstream sets); otherwise entries are made the first time a track is drawn;
- the pretraining objective (its entry, passed in by the run; absent: the stems) picks the
  pretraining items by its ``items`` (``ITEMS``): ``stems`` mixes the stems as
  above; ``pairs`` serves mixtures of two mixtures (``mixit.MixturePairs``, source names mixture1,
  mixture2); ``grouped`` the plain mixtures (source ``mix``). An objective that does not read stems
  reads the corpus as mixtures only (``mixtures.unlabeled``); so does the ``mixtures`` corpus, which
  has none. A corpus read without stems refuses an objective that needs them, the fine-tuning
  stages and incoherent mixing. Whether a corpus is read without stems follows from the objective
  alone: a dataset config that says so itself (``unlabeled``) is refused.

Folds: option ``fold`` (the config's top-level ``fold`` via ``downstream.dataset.fold``; 0 is the
paper's split) picks one of the test splits a downstream loader declares (``folds``; the rule is
in bach10.py, dagstuhl.py, stems.py); the pretraining corpora take fold 0 only. ``fold_info(idx)``
reads back an index's fold, its number of folds and its train / test track counts; the run's
DataModule description carries them too (``fold``, ``n_folds``, ``train.tracks``, ``test.tracks``).
The stem cache is keyed by each track's audio files, never by split, so folds share its entries.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from transfersep.data import folds, loaders, mixtures, speech
from transfersep.data.augment import AugmentSpec
from transfersep.data.base import SeparationDataModule
from transfersep.data.cache import StemCache
from transfersep.data.folds import FoldInfo
from transfersep.data.index import DatasetError, DatasetIndex, Track, config_key
from transfersep.data.mixing import ExcerptSet, track_samples
from transfersep.data.mixit import SOURCE_NAMES as MIXIT_SOURCES
from transfersep.data.mixit import MixturePairs

# what a training item can hold (an objective's ``items``): the stems; two gained mixtures of
# different tracks (``data.mixit``); one mixture with labels from primitive grouping cues (``data.bootstrap``)
ITEMS = ("stems", "pairs", "grouped")
NO_STEMS = ("mixtures",)  # corpora that are mixtures only, whatever the objective
INCOHERENT_UNLABELED = (
    "augment=incoherent draws each stem class from another track; a corpus read without stems has none: "
    "use augment=none, pitch or stretch"
)
TRAIN_LENGTH = 2**31 - 1  # effectively infinite: the run's budget is counted in steps


def fold_info(index: DatasetIndex) -> FoldInfo:
    """``index``'s fold, how many folds its dataset declares with these options, and the numbers of
    its train and test tracks (``n_test / n_train``); a pretraining corpus is fold 0 of 1."""
    return folds.read(index)


def n_folds(index: DatasetIndex) -> int:
    """How many folds (0..n-1) the dataset of ``index`` allows with the options it was built with,
    e.g. ``n_folds(build_index("bach10", [root]))`` or ``n_folds(index_from_cfg(cfg.downstream.dataset))``."""
    return folds.read(index).n_folds


def build_index(name: str, roots: Sequence[str], sources: Sequence[str] | None = None, **options: Any) -> DatasetIndex:
    """Index dataset ``name``; ``roots`` is one root, or (musdb root, slakh root) for ``both``.

    Every index is checked by ``lengths.check_lengths`` (option ``stem_lengths``: error | pad | trim).
    Option ``unlabeled: true`` reads any dataset as mixtures only (``mixtures.unlabeled``)."""
    from transfersep.data.lengths import OPTION, check_lengths

    policy = options.pop(OPTION, None)
    as_mixtures = bool(options.pop("unlabeled", False))
    idx = check_lengths(loaders.index_dataset(name, roots, sources, **options), policy)
    return mixtures.unlabeled(idx) if as_mixtures else idx


def index_from_cfg(ds_cfg: Any, unlabeled: bool = False) -> DatasetIndex:
    """The index of a ``pretrain.dataset`` / ``downstream.dataset`` config node; ``unlabeled``
    reads it as mixtures only whatever its ``unlabeled`` key says."""
    from omegaconf import OmegaConf

    opts = OmegaConf.to_container(ds_cfg, resolve=True)
    opts["unlabeled"] = bool(opts.get("unlabeled")) or unlabeled
    name = opts.pop("name")
    if opts.get("sources") in (None, "???") or "???" in list(opts.get("sources") or []):
        raise DatasetError(f"{name}: set the source names, e.g. '{config_key(name, 'sources')}=[lead,rhythm]'")
    roots = [opts.pop(k) for k in loaders.get(name).roots]
    return build_index(name, [str(r) for r in roots], opts.pop("sources", None), **opts)


def roots_of(ds_cfg: Any) -> list[str]:
    return [str(ds_cfg[k]) for k in loaders.get(ds_cfg.name).roots]


def track_weights(tracks: Sequence[Track], balance: str) -> np.ndarray | None:
    """``duration``: None (proportional to length); ``corpus``: each corpus drawn equally often."""
    if balance in (None, "duration"):
        return None
    if balance != "corpus":
        raise DatasetError(f"balance must be duration or corpus, not {balance!r}")
    lengths = np.array([track_samples(t) for t in tracks], dtype=np.float64)
    corpora = np.array([t.corpus for t in tracks])
    w = np.zeros_like(lengths)
    for c in set(corpora):
        sel = corpora == c
        w[sel] = lengths[sel] / max(lengths[sel].sum(), 1.0)
    return w


def precache(index_tracks: Sequence[Track], cache: StemCache) -> None:
    for t in index_tracks:
        for refs in t.sources.values():
            if refs:
                cache.ensure(refs, t.corpus)


def pretrain_items(cfg: Any, stage: str, objective: Any) -> tuple[str, bool, Any]:
    """(item kind, reads stems, settings node) of ``stage``'s training items: the pretraining
    objective's (``items``, ``reads_stems``, ``cfg.pretrain.<its name>``) when pretraining, the
    stems otherwise (fine-tuning and baselines train and score on stems)."""
    if stage != "pretrain" or objective is None:
        return "stems", True, None
    if objective.items not in ITEMS:
        raise DatasetError(
            f"objective={objective.name} asks for items {objective.items!r}; the data serves {', '.join(ITEMS)}"
        )
    pre = cfg.get("pretrain")
    return objective.items, bool(objective.reads_stems), pre.get(objective.name) if pre is not None else None


def refuse_unlabeled_key(ds_cfg: Any) -> None:
    """A dataset config may not say itself that it is read without stems: that follows from the
    pretraining objective, so a folder and a report can never call such a run supervised."""
    if ds_cfg is not None and "unlabeled" in ds_cfg:
        raise DatasetError(
            f"{config_key(ds_cfg.name, 'unlabeled')}: whether a corpus is read without stems follows from the "
            "pretraining objective (objective=mixit or bootstrap read mixtures only); drop the key"
        )


def _refuse_unusable(cfg: Any, stage: str, objective: Any, as_mixtures: bool, aug: AugmentSpec) -> None:
    """One line for a config that asks an unlabeled corpus for stems (see the module docstring)."""
    ds_cfg = cfg.pretrain.dataset if stage == "pretrain" else cfg.downstream.dataset
    reads_stems = stage != "pretrain" or objective is None or objective.reads_stems
    if as_mixtures and reads_stems:
        what = (
            f"objective={objective.name} trains"
            if stage == "pretrain" and objective
            else f"the {stage} stage trains and scores"
        )
        raise DatasetError(
            f"{ds_cfg.name}: a corpus without stems, and {what} on stems; "
            "use an objective that reads mixtures only (objective=mixit or bootstrap), or a dataset with stems"
        )
    if (as_mixtures or not reads_stems) and aug.incoherent:
        raise DatasetError(INCOHERENT_UNLABELED)
    if (as_mixtures or not reads_stems) and str(ds_cfg.get("train_mixing", "coherent")) == "incoherent":
        raise DatasetError(
            f"{config_key(ds_cfg.name, 'train_mixing')}=incoherent draws each stem class from another track; "
            "a corpus read without stems has none: set it to coherent"
        )


def build_real(cfg: Any, stage: str, total_steps: int, objective: Any = None) -> SeparationDataModule:
    """The DataModule of a run on a real dataset (see the module docstring); ``objective``: the
    pretraining objective's entry (``transfersep.data.build_datamodule``)."""
    if stage not in ("pretrain", "finetune", "baseline"):
        raise ValueError(f"stage must be pretrain, finetune or baseline, not {stage!r}")
    ds_cfg = cfg.pretrain.dataset if stage == "pretrain" else cfg.downstream.dataset
    if ds_cfg is None:
        raise DatasetError(
            f"stage {stage} needs a dataset: set {'pretrain' if stage == 'pretrain' else 'downstream'}=<name>"
        )
    d = cfg.data
    items, reads_stems, settings = pretrain_items(cfg, stage, objective)
    as_mixtures = ds_cfg.name in NO_STEMS
    aug = AugmentSpec.from_cfg(cfg.get("augment")) if stage == "pretrain" else AugmentSpec()
    _refuse_unusable(cfg, stage, objective, as_mixtures, aug)
    idx = index_from_cfg(ds_cfg, unlabeled=as_mixtures or not reads_stems)
    train_mode = "incoherent" if aug.incoherent else str(ds_cfg.get("train_mixing", "coherent"))
    test_mode = str(ds_cfg.get("test_mixing", "coherent"))
    cache = StemCache(cfg.paths.cache_dir, roots_of(ds_cfg))
    train, val, test = idx.split("train"), idx.split("val"), idx.split("test")
    if not train:
        raise DatasetError(f"{idx.dataset}: no training tracks under {idx.root}")
    if not test and stage != "pretrain":
        raise DatasetError(f"{idx.dataset}: no test tracks under {idx.root}; fine-tuning ends with a test evaluation")
    val = val or train
    if ds_cfg.get("precache", False):
        precache(train + val + test, cache)
    sources = list(idx.source_names)
    sec = float(d.excerpt_seconds)
    balance = ds_cfg.get("balance", "duration")
    if items == "pairs":
        gain = float(settings.gain_db)
        pairs = lambda tr, seed, split, n, a=None: MixturePairs(  # noqa: E731
            tr, cache, sec, seed, split, n, gain, a, track_weights(tr, balance), root=idx.root
        )
        train_set = pairs(train, int(cfg.seed), "train", TRAIN_LENGTH, aug)
        # a validation pair needs two tracks: a single held-out track is paired with the training ones
        val_set = pairs(val if len(val) >= 2 else val + train, int(d.eval_seed), "val", int(d.n_val))
        test_set, sources = [], list(MIXIT_SOURCES)  # pretraining is never scored on a test list
        train_mode = test_mode = "mixit"
    else:
        mk = lambda tr, mode, seed, split, n, a=None: ExcerptSet(  # noqa: E731
            tr, sources, cache, sec, mode, seed, split, n, a, track_weights(tr, balance)
        )
        train_set = mk(train, train_mode, int(cfg.seed), "train", TRAIN_LENGTH, aug)
        val_set = mk(val, test_mode, int(d.eval_seed), "val", int(d.n_val))
        test_set = mk(test, test_mode, int(d.eval_seed), "test", int(d.n_test)) if test else []
    info = fold_info(idx)
    desc = {
        **idx.summary(),
        "fold": info.fold,
        "n_folds": info.n_folds,
        "objective": objective.name if stage == "pretrain" and objective is not None else "dc",
        "unlabeled": as_mixtures or not reads_stems,
        "train_mixing": train_mode,
        "test_mixing": test_mode,
        "augment": {
            "pitch_semitones": aug.pitch_semitones,
            "stretch_rate": aug.stretch_rate,
            "incoherent": aug.incoherent,
        },
        "cache_dir": str(cache.dir),
        "band_limit_hz": speech.band_limit_hz(idx),
        "notes": idx.notes[:20],
    }
    return SeparationDataModule(
        train_set, val_set, test_set, sources, int(d.batch_size), int(total_steps), int(d.num_workers), description=desc
    )
