"""A speech corpus and a music corpus pretrained on as one (``librimix_slakh``).

Each part is indexed by its own loader with its own root (``<part>_root``) and options, written with
the part's name in front (``librimix_rate: 16k``, ``slakh_layout: auto``). Each part serves the
sources that are its own: the speech part the speaker slots (s1, s2, s3) and ``noise``, the music
part every other name (Slakh's classes). A track of one part is silent in the other part's sources,
so with coherent mixing an item is either a speech mixture or a piece of music, and deep clustering
(permutation-free, blind to silent sources) learns both from the same embedding; with incoherent
mixing every source comes from its own track, so every item is speech over music. ``balance:
corpus`` draws each part half the time whatever its length.

MUSDB+Slakh (``both``) is the older, music-only case of the same idea, with shared source names;
its own code is in registry.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from transfersep.data import speech
from transfersep.data.index import DatasetError, DatasetIndex

COMBINED = {"librimix_slakh": ("librimix", "slakh")}  # name -> (speech part, music part)
LOADER_KEYS = {
    "librimix": ["n_src", "rate", "mode", "subsets"],
    "wsj0mix": ["n_src", "rate", "mode", "subsets"],
    "musdb": ["variant", "stems"],
    "slakh": ["layout", "classes"],
}


def root_keys(name: str) -> tuple[str, ...]:
    """The config keys of a dataset's roots, in the order ``build_index`` takes them."""
    if name == "both":
        return ("musdb_root", "slakh_root")
    return tuple(f"{p}_root" for p in COMBINED[name]) if name in COMBINED else ("root",)


def index(
    name: str,
    roots: Sequence[str],
    sources: Sequence[str],
    options: Mapping[str, Any],
    build: Callable[..., DatasetIndex],
) -> DatasetIndex:
    """The parts' indexes as one; ``build(part, [root], sources, **options)`` indexes a part."""
    parts = COMBINED[name]
    mine = [[s for s in sources if speech.is_speech_source(s)], [s for s in sources if not speech.is_speech_source(s)]]
    for part, names in zip(parts, mine):
        if not names:
            kind = "s1, s2, s3, noise" if part == parts[0] else "a music class"
            raise DatasetError(f"{name}: none of the sources {list(sources)} is {part}'s ({kind}); list both parts'")
    idx = [
        build(part, [root], names, **{k: options.get(f"{part}_{k}") for k in LOADER_KEYS[part]})
        for part, root, names in zip(parts, roots, mine)
    ]
    tracks = []
    for i in idx:
        for t in i.tracks:
            t.sources = {s: t.sources.get(s, []) for s in sources}
            tracks.append(t)
    return DatasetIndex(
        name,
        " + ".join(i.root for i in idx),
        list(sources),
        tracks,
        layout="+".join(f"{p}:{i.layout}" for p, i in zip(parts, idx)),
        notes=[f"{p}: {n}" for p, i in zip(parts, idx) for n in i.notes],
    )
