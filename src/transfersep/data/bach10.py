"""Bach10: ten four-part chorales, ``<root>/NN-Name/NN-Name-{violin,clarinet,saxphone,bassoon}.wav``.

The files spell the saxophone ``saxphone``; the source is called ``saxophone`` (a correctly spelled
file is accepted too). Bach10 has no official split. The paper uses about 5 min for training and
0.5 min for testing (Table 1, of 334 s in all), i.e. one piece for test: by default piece 10
(``10-NunBitten``) is the test piece and the other nine train. Validation excerpts (used only by
the learning-rate plateau schedule) are drawn from the training pieces: the paper's split leaves no
third part, and the val excerpts are coherent mixtures while training mixes incoherently.

Folds (option ``fold``, default 0 = the split above). The N pieces present are taken in order of
their number; fold k shifts every test piece k places along that order, wrapping around: piece
number p becomes ((p - 1 + k) mod N) + 1 when all ten are present, so with ``test_pieces: [10]``
fold 1 tests piece 01 and fold 9 piece 09. With m test pieces there are N // m folds (floor), each
piece test in at most one of them; test pieces that are not evenly spaced would meet a piece
already tested, so their folds stop before that shift (``[9, 10]``: fold 0 only).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from transfersep.data import folds
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
    fold: int = 0,
) -> DatasetIndex:
    """Index the Bach10 tree at ``root``; ``fold`` picks the test pieces (see the module docstring)."""
    fold = folds.check(fold, "bach10")
    root = check_root(root, "bach10", EXPECT)
    for s in sources:
        if s not in INSTRUMENTS:
            raise DatasetError(f"bach10: unknown source {s!r}; Bach10 has {list(INSTRUMENTS)}")
    test = {int(p) for p in test_pieces}
    pieces = sorted((d for d in sorted_dirs(root) if PIECE_RE.match(d.name)), key=lambda d: (_number(d.name), d.name))
    nested = root / "Bach10"
    if not pieces and nested.is_dir() and any(PIECE_RE.match(d.name) for d in sorted_dirs(nested)):
        raise DatasetError(f"bach10: {root} holds a Bach10/ folder; point the root at {root / 'Bach10'}")
    tracks = []
    for d in pieces:
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
        tracks.append(Track(d.name, "train", src, corpus="bach10", ignored=ignored))
    tracks = require_tracks(tracks, "bach10", root, EXPECT)
    first = [k for k, t in enumerate(tracks) if _number(t.name) in test]  # fold 0's places in the order
    if not first:
        raise DatasetError(f"bach10: none of the test pieces {sorted(test)} is under {root}; set dataset.test_pieces")
    n, m = len(tracks), len(first)
    count = n_folds(n, first)
    if fold >= count:
        why = f"{n} pieces with {m} test piece{'s' if m > 1 else ''} make {folds.span(count)}"
        if count < n // m:
            why += f" (fold {count} would test a piece again: the test pieces are not evenly spaced)"
        raise folds.refuse("bach10", fold, count, why)
    for k in first:
        tracks[(k + fold) % n].split = "test"
    notes = [
        folds.note(fold, count, "pieces", tracks),
        "no validation pieces: validation excerpts are drawn from the training pieces",
    ]
    return DatasetIndex("bach10", str(root), list(sources), tracks, layout="bach10", notes=notes)


def _number(name: str) -> int:
    return int(PIECE_RE.match(name).group(1))


def n_folds(n_pieces: int, first: Sequence[int]) -> int:
    """Folds of ``n_pieces`` whose fold 0 tests the places ``first`` (0-based, in number order):
    n_pieces // len(first), cut before the first shift that would test a piece again."""
    seen: set[int] = set()
    for k in range(n_pieces // len(first)):
        shifted = {(i + k) % n_pieces for i in first}
        if shifted & seen:
            return k
        seen |= shifted
    return max(1, n_pieces // len(first))
