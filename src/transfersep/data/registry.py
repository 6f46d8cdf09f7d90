"""Dataset names -> loaders, and the DataModule of a run (``build_real``).

``build_index(name, roots, sources, **options)`` indexes one dataset; ``options`` are the loader
keys of ``conf/pretrain/<name>.yaml`` / ``conf/downstream/<name>.yaml`` (see each loader's
docstring). ``build_real(cfg, stage, total_steps)`` wires index, cache, mixing and augmentation:

- pretrain: ``cfg.pretrain.dataset`` with ``cfg.augment`` (``augment.incoherent`` switches the
  training stream to incoherent mixing); finetune / baseline: ``cfg.downstream.dataset``, no
  augmentation, training mixed as ``train_mixing``;
- validation and test excerpts are mixed as ``test_mixing``, chosen by ``data.eval_seed``
  (``data.n_val`` / ``data.n_test`` of them); a dataset without validation tracks (Bach10,
  stem folders without ``valid/``) draws its validation excerpts from the training tracks;
- ``precache: true`` fills the 16 kHz cache of every used track before training starts (small
  downstream sets); otherwise entries are made the first time a track is drawn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from transfersep.data import bach10, dagstuhl, musdb, slakh, stems
from transfersep.data.augment import AugmentSpec
from transfersep.data.base import SeparationDataModule
from transfersep.data.cache import StemCache
from transfersep.data.index import DatasetError, DatasetIndex, Track, config_key
from transfersep.data.mixing import ExcerptSet, track_samples

DEFAULT_SOURCES = {
    "musdb": ["accompaniment", "vocals"],
    "slakh": ["bass", "drums", "piano_guitar"],
    "both": ["bass", "drums", "other"],
    "bach10": ["violin", "clarinet", "saxophone", "bassoon"],
    "dagstuhl": ["male", "female"],
    "remixpacks": ["snare", "kick_drum", "cymbals"],
    "stems": None,
}
NAMES = tuple(DEFAULT_SOURCES)
TRAIN_LENGTH = 2**31 - 1  # effectively infinite: the run's budget is counted in steps


def _opts(options: Mapping[str, Any], keys: Sequence[str]) -> dict:
    return {k: options[k] for k in keys if options.get(k) is not None}


def build_index(name: str, roots: Sequence[str], sources: Sequence[str] | None = None, **options: Any) -> DatasetIndex:
    """Index dataset ``name``; ``roots`` is one root, or (musdb root, slakh root) for ``both``.

    Every index is checked by ``lengths.check_lengths`` (option ``stem_lengths``: error | pad | trim)."""
    from transfersep.data.lengths import OPTION, check_lengths

    policy = options.pop(OPTION, None)
    return check_lengths(_build_index(name, roots, sources, **options), policy)


def _build_index(name: str, roots: Sequence[str], sources: Sequence[str] | None = None, **options: Any) -> DatasetIndex:
    if name not in DEFAULT_SOURCES:
        raise DatasetError(f"unknown dataset {name!r}; one of {', '.join(NAMES)}")
    sources = list(sources) if sources else DEFAULT_SOURCES[name]
    if not sources:
        raise DatasetError(f"{name}: give the source (class) names, e.g. --sources lead,rhythm")
    want = 2 if name == "both" else 1
    if len(roots) != want:
        raise DatasetError(
            f"{name} takes {want} root(s) ({'MUSDB root, Slakh root' if want == 2 else 'ROOT'}), got {len(roots)}"
        )
    root = roots[0]
    if name == "musdb":
        return musdb.index(root, sources, **_opts(options, ["variant", "stems"]))
    if name == "slakh":
        return slakh.index(root, sources, **_opts(options, ["layout", "classes"]))
    if name == "bach10":
        return bach10.index(root, sources, **_opts(options, ["test_pieces"]))
    if name == "dagstuhl":
        return dagstuhl.index(root, sources, **_opts(options, ["pieces", "mic", "groups", "test_takes", "val_takes"]))
    if name in ("remixpacks", "stems"):
        keys = ["patterns", "test_every", "val_every", stems.MISSING_OPTION]
        return stems.index(root, sources, name=name, **_opts(options, keys))
    # both: MUSDB other + Slakh piano and guitar (paper §3.1)
    m = musdb.index(
        roots[0],
        sources,
        **_opts({"variant": options.get("musdb_variant"), "stems": options.get("musdb_stems")}, ["variant", "stems"]),
    )
    s = slakh.index(
        roots[1],
        sources,
        **_opts(
            {"layout": options.get("slakh_layout"), "classes": options.get("slakh_classes")}, ["layout", "classes"]
        ),
    )
    return DatasetIndex(
        "both",
        f"{m.root} + {s.root}",
        list(sources),
        m.tracks + s.tracks,
        layout=f"musdb:{m.layout}+slakh:{s.layout}",
        notes=[f"musdb: {n}" for n in m.notes] + [f"slakh: {n}" for n in s.notes],
    )


def index_from_cfg(ds_cfg: Any) -> DatasetIndex:
    """The index of a ``pretrain.dataset`` / ``downstream.dataset`` config node."""
    from omegaconf import OmegaConf

    opts = OmegaConf.to_container(ds_cfg, resolve=True)
    name = opts.pop("name")
    if opts.get("sources") in (None, "???") or "???" in list(opts.get("sources") or []):
        raise DatasetError(f"{name}: set the source names, e.g. '{config_key(name, 'sources')}=[lead,rhythm]'")
    roots = [opts.pop("musdb_root"), opts.pop("slakh_root")] if name == "both" else [opts.pop("root")]
    return build_index(name, [str(r) for r in roots], opts.pop("sources", None), **opts)


def roots_of(ds_cfg: Any) -> list[str]:
    return [str(ds_cfg.musdb_root), str(ds_cfg.slakh_root)] if ds_cfg.name == "both" else [str(ds_cfg.root)]


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


def build_real(cfg: Any, stage: str, total_steps: int) -> SeparationDataModule:
    """The DataModule of a run on a real dataset (see the module docstring)."""
    if stage not in ("pretrain", "finetune", "baseline"):
        raise ValueError(f"stage must be pretrain, finetune or baseline, not {stage!r}")
    ds_cfg = cfg.pretrain.dataset if stage == "pretrain" else cfg.downstream.dataset
    if ds_cfg is None:
        raise DatasetError(
            f"stage {stage} needs a dataset: set {'pretrain' if stage == 'pretrain' else 'downstream'}=<name>"
        )
    d = cfg.data
    idx = index_from_cfg(ds_cfg)
    aug = AugmentSpec.from_cfg(cfg.get("augment")) if stage == "pretrain" else AugmentSpec()
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
    mk = lambda tr, mode, seed, split, n, a=None: ExcerptSet(  # noqa: E731
        tr, sources, cache, sec, mode, seed, split, n, a, track_weights(tr, balance)
    )
    train_set = mk(train, train_mode, int(cfg.seed), "train", TRAIN_LENGTH, aug)
    val_set = mk(val, test_mode, int(d.eval_seed), "val", int(d.n_val))
    test_set = mk(test, test_mode, int(d.eval_seed), "test", int(d.n_test)) if test else []
    desc = {
        **idx.summary(),
        "train_mixing": train_mode,
        "test_mixing": test_mode,
        "augment": {
            "pitch_semitones": aug.pitch_semitones,
            "stretch_rate": aug.stretch_rate,
            "incoherent": aug.incoherent,
        },
        "cache_dir": str(cache.dir),
        "notes": idx.notes[:20],
    }
    return SeparationDataModule(
        train_set, val_set, test_set, sources, int(d.batch_size), int(total_steps), int(d.num_workers), description=desc
    )
