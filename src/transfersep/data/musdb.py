"""MUSDB18-HQ (``<root>/{train,test}/<Artist - Title>/<stem>.wav``) and MUSDB18
(``<root>/{train,test}/<Artist - Title>.stem.mp4``, five AAC streams: mixture, drums, bass, other,
vocals; needs ffmpeg).

Splits: ``train`` minus the 14 validation tracks of the ``musdb`` package (also demucs') -> train,
those 14 -> val, ``test/`` -> test. Sources are sums of the four stems, by default
accompaniment = drums + bass + other and vocals (paper §3.1); MUSDB+Slakh uses bass, drums, other.
The mixture file is never used: the tool mixes stems itself, so mix == sum(sources) exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from transfersep.data import ffmpeg
from transfersep.data.index import DatasetError, DatasetIndex, Track, check_root, probe, require_tracks, sorted_dirs

STEMS = ("mixture", "drums", "bass", "other", "vocals")  # also the stream order in .stem.mp4
DEFAULT_GROUPS = {
    "accompaniment": ["drums", "bass", "other"],
    "vocals": ["vocals"],
    "bass": ["bass"],
    "drums": ["drums"],
    "other": ["other"],
}
VALIDATION_TRACKS = (
    "Actions - One Minute Smile",
    "Clara Berry And Wooldog - Waltz For My Victims",
    "Johnny Lokke - Promises & Lies",
    "Patrick Talbot - A Reason To Leave",
    "Triviul - Angelsaint",
    "Alexander Ross - Goodbye Bolero",
    "Fergessen - Nos Palpitants",
    "Leaf - Summerghost",
    "Skelpolu - Human Mistakes",
    "Young Griffo - Pennies",
    "ANiMAL - Rockshow",
    "James May - On The Line",
    "Meaxic - Take A Step",
    "Traffic Experiment - Sirens",
)
EXPECT = "MUSDB18-HQ (<root>/train/<Artist - Title>/{drums,bass,other,vocals}.wav) or MUSDB18 (<root>/train/*.stem.mp4)"


def _groups(sources: Sequence[str], groups: Mapping[str, Sequence[str]] | None) -> dict[str, list[str]]:
    table = {**DEFAULT_GROUPS, **{k: list(v) for k, v in (groups or {}).items()}}
    out = {}
    for s in sources:
        if s not in table:
            raise DatasetError(f"musdb: no stems for source {s!r}; set dataset.stems.{s} to a list of {STEMS[1:]}")
        bad = [x for x in table[s] if x not in STEMS[1:]]
        if bad:
            raise DatasetError(f"musdb: dataset.stems.{s} names {bad}, not MUSDB stems {STEMS[1:]}")
        out[s] = list(table[s])
    return out


def detect_variant(root: Path) -> str:
    for split in ("train", "test"):
        d = root / split
        if not d.is_dir():
            continue
        if any(d.glob("*.stem.mp4")):
            return "stem"
        if any((c / "vocals.wav").is_file() or (c / "mixture.wav").is_file() for c in sorted_dirs(d)):
            return "hq"
    if (
        (root / "mixture.wav").is_file()
        or any((c / "mixture.wav").is_file() for c in sorted_dirs(root))
        or any(root.glob("*.stem.mp4"))
    ):
        raise DatasetError(
            f"musdb: {root} looks like a split folder (train/ or test/) of MUSDB18; "
            f"point the root at the folder that holds train/ and test/"
        )
    raise DatasetError(f"musdb: {root} is not MUSDB18: expected {EXPECT}")


def index(
    root: str | Path,
    sources: Sequence[str] = ("accompaniment", "vocals"),
    variant: str = "auto",
    stems: Mapping[str, Sequence[str]] | None = None,
) -> DatasetIndex:
    """Index MUSDB18(-HQ) at ``root``; ``variant`` is auto | hq | stem."""
    root = check_root(root, "musdb", EXPECT)
    groups = _groups(sources, stems)
    if variant == "auto":
        variant = detect_variant(root)
    if variant not in ("hq", "stem"):
        raise DatasetError(f"musdb: variant must be auto, hq or stem, not {variant!r}")
    val = set(VALIDATION_TRACKS)
    tracks, notes = [], []
    for folder in ("train", "test"):
        d = root / folder
        if not d.is_dir():
            notes.append(f"no {folder}/ folder under {root}")
            continue
        entries = sorted_dirs(d) if variant == "hq" else sorted(d.glob("*.stem.mp4"))
        for e in entries:
            name = e.name[: -len(".stem.mp4")] if variant == "stem" else e.name
            split = "test" if folder == "test" else ("val" if name in val else "train")
            if variant == "hq":
                files = {}
                for s in STEMS[1:]:
                    f = e / f"{s}.wav"
                    if not f.is_file():
                        raise DatasetError(
                            f"musdb: {f} is missing: every MUSDB18-HQ track has {STEMS}; re-download the track"
                        )
                    files[s] = probe(f)
                ignored = sorted(p.name for p in e.iterdir() if p.name not in {f"{s}.wav" for s in STEMS})
            else:
                refs = ffmpeg.probe_streams(e)
                if len(refs) != len(STEMS):
                    raise DatasetError(
                        f"musdb: {e} has {len(refs)} audio streams; a MUSDB18 .stem.mp4 has 5 ({', '.join(STEMS)})"
                    )
                files = dict(zip(STEMS, refs))
                ignored = []
            tracks.append(
                Track(
                    name, split, {k: [files[s] for s in v] for k, v in groups.items()}, corpus="musdb", ignored=ignored
                )
            )
    tracks = require_tracks(tracks, "musdb", root, EXPECT)
    found_val = {t.name for t in tracks if t.split == "val"}
    if found_val != val and any(t.split == "train" for t in tracks):
        notes.append(f"{len(val - found_val)} of the 14 validation tracks are absent (a partial copy?)")
    return DatasetIndex("musdb", str(root), list(sources), tracks, layout=variant, notes=notes)
