"""Bach10: ten four-part chorales, ``<root>/NN-Name/NN-Name-{violin,clarinet,saxphone,bassoon}.wav``.

The files spell the saxophone ``saxphone``; the source is called ``saxophone`` (a correctly spelled
file is accepted too). Bach10 has no official split. The paper uses about 5 min for training and
0.5 min for testing (Table 1, of 334 s in all), i.e. one piece for test: by default piece 10
(``10-NunBitten``) is the test piece and the other nine train. Validation excerpts (used only by
the learning-rate plateau schedule) are drawn from the training pieces: the paper's split leaves no
third part, and the val excerpts are coherent mixtures while training mixes incoherently.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from transfersep.data.index import DatasetError, DatasetIndex, Track, check_root, probe, require_tracks, sorted_dirs

INSTRUMENTS = {
    "violin": ("violin",),
    "clarinet": ("clarinet",),
    "saxophone": ("saxphone", "saxophone"),
    "bassoon": ("bassoon",),
}
PIECE_RE = re.compile(r"^(\d{2})-(.+)$")
EXPECT = "Bach10 (<root>/01-AchGottundHerr/01-AchGottundHerr-violin.wav, ...)"
DEFAULT_TEST_PIECES = (10,)


def index(
    root: str | Path,
    sources: Sequence[str] = ("violin", "clarinet", "saxophone", "bassoon"),
    test_pieces: Sequence[int] = DEFAULT_TEST_PIECES,
) -> DatasetIndex:
    root = check_root(root, "bach10", EXPECT)
    for s in sources:
        if s not in INSTRUMENTS:
            raise DatasetError(f"bach10: unknown source {s!r}; Bach10 has {list(INSTRUMENTS)}")
    test = {int(p) for p in test_pieces}
    pieces = [d for d in sorted_dirs(root) if PIECE_RE.match(d.name)]
    nested = root / "Bach10"
    if not pieces and nested.is_dir() and any(PIECE_RE.match(d.name) for d in sorted_dirs(nested)):
        raise DatasetError(f"bach10: {root} holds a Bach10/ folder; point the root at {root / 'Bach10'}")
    tracks = []
    for d in pieces:
        number = int(PIECE_RE.match(d.name).group(1))
        by_lower = {p.name.lower(): p for p in d.iterdir() if p.is_file()}
        src = {}
        for s in sources:
            names = [f"{d.name}-{alias}.wav".lower() for alias in INSTRUMENTS[s]]
            f = next((by_lower[n] for n in names if n in by_lower), None)
            if f is None:
                raise DatasetError(
                    f"bach10: {d / (d.name + '-' + INSTRUMENTS[s][0] + '.wav')} is missing; "
                    f"every Bach10 piece has violin, clarinet, saxphone and bassoon WAVs"
                )
            src[s] = [probe(f)]
        used = {r.path for refs in src.values() for r in refs}
        ignored = sorted(p.name for p in by_lower.values() if str(p.resolve()) not in used)
        tracks.append(Track(d.name, "test" if number in test else "train", src, corpus="bach10", ignored=ignored))
    tracks = require_tracks(tracks, "bach10", root, EXPECT)
    if not any(t.split == "test" for t in tracks):
        raise DatasetError(f"bach10: none of the test pieces {sorted(test)} is under {root}; set dataset.test_pieces")
    notes = [
        f"test pieces: {[t.name for t in tracks if t.split == 'test']}",
        "no validation pieces: validation excerpts are drawn from the training pieces",
    ]
    return DatasetIndex("bach10", str(root), list(sources), tracks, layout="bach10", notes=notes)
