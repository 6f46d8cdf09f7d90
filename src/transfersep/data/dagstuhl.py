"""Dagstuhl ChoirSet v1.2.3: ``<root>/audio_wav_22050_mono/<take>_<part><n>_<MIC>.wav``.

A take is ``DCS_<piece>_<setting>_<take>``. The study (paper §3.2) uses the songs only (pieces
``LI`` and ``TP``; never the ``SE`` exercises) and only takes in which every part S, A, T, B has
at least one ``DYN`` (handheld dynamic) microphone; male = bass + tenor, female = alto + soprano,
each the sum of that part's DYN files (one singer per part in quartets and, by the recording
setup, in full-choir takes). Take-level files (``_Stereo_STM``, ``_Piano_SPL``, ...) and the HSM/LRX
microphones are listed as ignored.

Split by take (no official split). Per piece, the eligible takes sorted by name (FullChoir <
QuartetA < QuartetB, then take number): the last is test, the one before it validation, the rest
train (a piece with two eligible takes gives train + test, with one only train). On v1.2.3 that
holds out ``DCS_LI_QuartetB_Take05`` / ``DCS_TP_QuartetB_<last>`` for test, the take before each
for validation — roughly the paper's 10:1 train:test proportion (70 / 7 min). ``test_takes`` and
``val_takes`` replace the rule with explicit take names.

Folds (option ``fold``, default 0 = the rule above). With a piece's n eligible takes in name order,
fold k rotates the rule: test = takes[(n-1-k) mod n], validation = takes[(n-2-k) mod n] (when
n >= 3). There are as many folds as the fewest eligible takes of a piece, so within the folds no
take is test twice and every take of that piece is test once. Explicit ``test_takes`` /
``val_takes`` fix the split: fold 0 only.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

from transfersep.data import folds
from transfersep.data.index import DatasetError, DatasetIndex, Track, check_root, probe, require_tracks

AUDIO_DIR = "audio_wav_22050_mono"
SINGER_RE = re.compile(
    r"^(?P<take>DCS_(?P<piece>[A-Z]+)_(?P<setting>[A-Za-z]+)_(?P<tk>[A-Za-z0-9]+))_(?P<part>[SATB])(?P<n>\d+)_(?P<mic>DYN|HSM|LRX)\.wav$"
)
TAKE_FILE_RE = re.compile(r"^(?P<take>DCS_[A-Z]+_[A-Za-z]+_[A-Za-z0-9]+)_[A-Za-z]+_[A-Z]{3}\.wav$")
DEFAULT_GROUPS = {"male": ["B", "T"], "female": ["A", "S"]}
EXPECT = "Dagstuhl ChoirSet (<root>/audio_wav_22050_mono/DCS_LI_QuartetA_Take01_S2_DYN.wav, ...)"


def _audio_dir(root: Path) -> Path:
    if (root / AUDIO_DIR).is_dir():
        return root / AUDIO_DIR
    if any(SINGER_RE.match(p.name) for p in root.glob("DCS_*.wav")):
        return root  # pointed straight at the audio folder
    raise DatasetError(f"dagstuhl: {root} is not Dagstuhl ChoirSet: no {AUDIO_DIR}/ folder; expected {EXPECT}")


def split_takes(
    eligible: Sequence[str], test_takes: Sequence[str] | None, val_takes: Sequence[str] | None, fold: int = 0
) -> dict[str, str]:
    """take -> train | val | test for ``fold`` (see the module docstring for the rule); a fold the
    takes do not allow raises DatasetError."""
    explicit = test_takes is not None or val_takes is not None
    if explicit and fold:
        why = "test_takes/val_takes fix the split (set them to null for the rotating folds), fold 0 only"
        raise folds.refuse("dagstuhl", fold, 1, why)
    if explicit:
        test, val = set(test_takes or ()), set(val_takes or ())
        unknown = (test | val) - set(eligible)
        if unknown:
            raise DatasetError(
                f"dagstuhl: test_takes/val_takes name {sorted(unknown)}, which are not eligible "
                f"takes (LI/TP with S, A, T, B on DYN): {sorted(eligible)}"
            )
        return {t: "test" if t in test else "val" if t in val else "train" for t in eligible}
    by_piece: dict[str, list[str]] = defaultdict(list)
    for t in sorted(eligible):
        by_piece[t.split("_")[1]].append(t)
    if by_piece and fold >= n_folds(eligible):
        piece, takes = min(by_piece.items(), key=lambda kv: (len(kv[1]), kv[0]))
        count = len(takes)
        why = f"piece {piece} has {count} eligible take(s), the fewest of the pieces, which make {folds.span(count)}"
        raise folds.refuse("dagstuhl", fold, count, why)
    out = {}
    for takes in by_piece.values():
        n = len(takes)
        test, val = (n - 1 - fold) % n, (n - 2 - fold) % n
        for k, t in enumerate(takes):
            out[t] = "test" if (n >= 2 and k == test) else "val" if (n >= 3 and k == val) else "train"
    return out


def n_folds(eligible: Sequence[str]) -> int:
    """Folds of the rotating rule: the fewest eligible takes of a piece (1 when there are none)."""
    counts: dict[str, int] = defaultdict(int)
    for t in eligible:
        counts[t.split("_")[1]] += 1
    return min(counts.values(), default=1)


def index(
    root: str | Path,
    sources: Sequence[str] = ("male", "female"),
    pieces: Sequence[str] = ("LI", "TP"),
    mic: str = "DYN",
    groups: Mapping[str, Sequence[str]] | None = None,
    test_takes: Sequence[str] | None = None,
    val_takes: Sequence[str] | None = None,
    fold: int = 0,
) -> DatasetIndex:
    """Index the ChoirSet at ``root``; ``fold`` picks the test takes (see the module docstring)."""
    fold = folds.check(fold, "dagstuhl")
    root = check_root(root, "dagstuhl", EXPECT)
    audio = _audio_dir(root)
    table = {**DEFAULT_GROUPS, **{k: list(v) for k, v in (groups or {}).items()}}
    for s in sources:
        if s not in table or any(p not in "SATB" or len(p) != 1 for p in table[s]):
            raise DatasetError(f"dagstuhl: source {s!r} needs dataset.groups.{s} as a list of parts from S, A, T, B")
    parts_needed = sorted({p for s in sources for p in table[s]})
    singers: dict[str, dict[str, list[Path]]] = defaultdict(lambda: defaultdict(list))  # take -> part -> files
    take_files: dict[str, list[str]] = defaultdict(list)
    unknown = []
    for f in sorted(audio.glob("*.wav")):
        m = SINGER_RE.match(f.name)
        if m:
            take_files[m["take"]].append(f.name)
            if m["mic"] == mic:
                singers[m["take"]][m["part"]].append(f)
            continue
        m2 = TAKE_FILE_RE.match(f.name)
        if m2:
            take_files[m2["take"]].append(f.name)
        else:
            unknown.append(f.name)
    if not take_files:
        raise DatasetError(f"dagstuhl: {audio} holds no DCS_*.wav recordings; expected {EXPECT}")
    skipped, eligible = [], []
    for take in sorted(take_files):
        piece = take.split("_")[1]
        lacking = [p for p in parts_needed if not singers[take].get(p)]
        if piece not in pieces:
            skipped.append(f"{take}: piece {piece} is not one of the songs {list(pieces)}")
        elif lacking:
            skipped.append(f"{take}: no {mic} microphone for part(s) {''.join(lacking)}")
        else:
            eligible.append(take)
    splits = split_takes(eligible, test_takes, val_takes, fold)
    tracks = []
    for take in eligible:
        src = {s: [probe(f) for p in table[s] for f in singers[take][p]] for s in sources}
        used = {Path(r.path).name for refs in src.values() for r in refs}
        tracks.append(
            Track(
                take, splits[take], src, corpus="dagstuhl", ignored=sorted(n for n in take_files[take] if n not in used)
            )
        )
    tracks = require_tracks(tracks, "dagstuhl", root, f"LI/TP takes with S, A, T, B on {mic} microphones")
    explicit = test_takes is not None or val_takes is not None
    count = 1 if explicit else n_folds(eligible)
    notes = [folds.note(fold, count, "takes", tracks), f"skipped {len(skipped)} takes", *skipped]
    if unknown:
        notes.append(f"unrecognised files (ignored): {unknown[:20]}{' ...' if len(unknown) > 20 else ''}")
    return DatasetIndex("dagstuhl", str(root), list(sources), tracks, layout=mic, notes=notes)
