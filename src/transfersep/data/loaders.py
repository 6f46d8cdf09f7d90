"""The datasets, each declared once: its name, its loader, its default sources and the options the
loader takes from its config (``conf/pretrain/<name>.yaml`` / ``conf/downstream/<name>.yaml``).

``get(name)`` finds a declaration among the built-in ones below, or else in the module
``transfersep.data.<name>`` if that module declares ``LOADER = Loader(...)``: a new dataset is its
loader module (with its declaration), its config file and its value in ``sweeps/grid.yaml``
(docs/extending.md). ``build_index`` in ``registry`` reads the declaration to index a dataset.

A loader is called as ``index(roots, sources, **options)``: its roots in the order of ``roots``
(config keys), the source names (the declaration's ``sources`` when none are given) and the
options of ``options`` that the config sets.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from transfersep.data import bach10, combined, dagstuhl, folds, librimix, mixtures, musdb, slakh, stems, wsj0mix
from transfersep.data.index import PRETRAIN_SETS, DatasetError, DatasetIndex


@dataclass(frozen=True)
class Loader:
    name: str
    index: Callable[..., DatasetIndex]  # index(roots, sources, **options)
    sources: tuple[str, ...] | None = None  # default sources; None: give them, or the loader derives them
    options: tuple[str, ...] | None = ()  # the config keys passed on when set (None: every key)
    roots: tuple[str, ...] = ("root",)  # the config keys of its roots
    derives_sources: bool = False  # the loader names the sources itself when none are given
    pretrain: bool = False  # a pretraining corpus: its keys are under pretrain.dataset, fold 0 only


_REGISTRY: dict[str, Loader] = {}


def register(loader: Loader) -> Loader:
    _REGISTRY[loader.name] = loader
    if loader.pretrain:
        PRETRAIN_SETS.add(loader.name)
    return loader


def get(name: str) -> Loader:
    """The declaration of dataset ``name`` (``DatasetError`` naming the known ones when there is none)."""
    if name not in _REGISTRY and name.isidentifier():
        try:
            module = importlib.import_module(f"transfersep.data.{name}")
        except ModuleNotFoundError:
            module = None
        if isinstance(getattr(module, "LOADER", None), Loader):
            register(module.LOADER)
    if name not in _REGISTRY:
        raise DatasetError(f"unknown dataset {name!r}; one of {', '.join(names())}")
    return _REGISTRY[name]


def names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def one_root(index: Callable[..., DatasetIndex], **fixed: Any) -> Callable[..., DatasetIndex]:
    """A single-root loader ``index(root, sources, **options)`` as ``index(roots, sources, **options)``."""
    return lambda roots, sources, **options: index(roots[0], sources, **fixed, **options)


def _both(roots: Sequence[str], sources: Sequence[str], **options: Any) -> DatasetIndex:
    """MUSDB other + Slakh piano and guitar as one corpus (paper §3.1)."""
    part = lambda prefix, keys: {k: options[f"{prefix}_{k}"] for k in keys if options.get(f"{prefix}_{k}") is not None}  # noqa: E731
    m = musdb.index(roots[0], sources, **part("musdb", ("variant", "stems")))
    s = slakh.index(roots[1], sources, **part("slakh", ("layout", "classes")))
    return DatasetIndex(
        "both",
        f"{m.root} + {s.root}",
        list(sources),
        m.tracks + s.tracks,
        layout=f"musdb:{m.layout}+slakh:{s.layout}",
        notes=[f"musdb: {n}" for n in m.notes] + [f"slakh: {n}" for n in s.notes],
    )


def _combined(name: str) -> Callable[..., DatasetIndex]:
    return lambda roots, sources, **options: combined.index(name, roots, sources, options, index_dataset)


def index_dataset(
    name: str, roots: Sequence[str], sources: Sequence[str] | None = None, **options: Any
) -> DatasetIndex:
    """Index dataset ``name`` by its declaration (without the length check of ``registry.build_index``)."""
    loader = get(name)
    sources = list(sources) if sources else (list(loader.sources) if loader.sources else None)
    if not sources and not loader.derives_sources:
        raise DatasetError(f"{name}: give the source (class) names, e.g. --sources lead,rhythm")
    if len(roots) != len(loader.roots):
        keys = loader.roots
        what = ", ".join(k.replace("_root", " root") for k in keys) if len(keys) > 1 else "ROOT"
        raise DatasetError(f"{name} takes {len(keys)} root(s) ({what}), got {len(roots)}")
    fold = folds.check(0 if options.get("fold") is None else options["fold"], name)
    if fold and name in PRETRAIN_SETS:
        raise folds.refuse(name, fold, 1, "a pretraining corpus has no downstream test split, fold 0 only")
    if loader.options is not None:
        options = {k: options[k] for k in loader.options if options.get(k) is not None}
    return loader.index(list(roots), sources, **options)


_FOLDED = ("fold",)  # the downstream sets declare folds (data.folds)
_SPEECH = tuple(combined.LOADER_KEYS["librimix"])
for _loader in (
    Loader("musdb", one_root(musdb.index), ("accompaniment", "vocals"), ("variant", "stems"), pretrain=True),
    Loader("slakh", one_root(slakh.index), ("bass", "drums", "piano_guitar"), ("layout", "classes"), pretrain=True),
    Loader(
        "both",
        _both,
        ("bass", "drums", "other"),
        ("musdb_variant", "musdb_stems", "slakh_layout", "slakh_classes"),
        roots=("musdb_root", "slakh_root"),
        pretrain=True,
    ),
    Loader("bach10", one_root(bach10.index), ("violin", "clarinet", "saxophone", "bassoon"), ("test_pieces", *_FOLDED)),
    Loader(
        "dagstuhl",
        one_root(dagstuhl.index),
        ("male", "female"),
        ("pieces", "mic", "groups", "test_takes", "val_takes", *_FOLDED),
    ),
    *(
        Loader(
            n, one_root(stems.index, name=n), s, ("patterns", "test_every", "val_every", stems.MISSING_OPTION, *_FOLDED)
        )
        for n, s in (("remixpacks", ("snare", "kick_drum", "cymbals")), ("stems", None))
    ),
    Loader("mixtures", one_root(mixtures.index), (mixtures.SOURCE,), ("unreadable",), pretrain=True),
    Loader("librimix", one_root(librimix.index), None, _SPEECH, derives_sources=True, pretrain=True),
    Loader("wsj0mix", one_root(wsj0mix.index), None, _SPEECH, derives_sources=True, pretrain=True),
    Loader(
        "librimix_slakh",
        _combined("librimix_slakh"),
        ("s1", "s2", "bass", "drums", "piano_guitar"),
        None,
        roots=tuple(f"{p}_root" for p in combined.COMBINED["librimix_slakh"]),
        pretrain=True,
    ),
):
    register(_loader)
