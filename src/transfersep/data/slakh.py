"""Slakh2100: flac redux, the original release, and babyslakh_16k.

A track is ``TrackNNNNN/{metadata.yaml, mix.flac, stems/SNN.flac, ...}`` (babyslakh: ``.wav`` at
16 kHz). Stems are grouped into sources by ``metadata.yaml``: a stem's class is ``Drums`` when
``is_drum`` is true (or ``inst_class`` says Drums), its ``inst_class`` otherwise; each source is the
sum of the stems whose class is in its list (default bass: [Bass], drums: [Drums],
piano_guitar: [Piano, Guitar]).

Layouts (``layout``):
- ``redux``: ``<root>/{train,validation,test}/Track*``; ``omitted/`` holds duplicates: never used.
- ``original``: split by track id (00001-01500 train, 01501-01875 validation, 01876-02100 test),
  wherever the Track folders lie (directly under root or in split folders; never ``omitted/``).
- ``baby``: babyslakh_16k, ``<root>/Track000NN`` with no split; the last 10 % of the tracks (at
  least one) are test and the 10 % before them validation (20 tracks -> 16 / 2 / 2).
- ``auto``: split folders -> redux; flat Track folders with WAV stems -> baby; flat FLAC -> original.

Quirks handled: stem ids have gaps; a stem with ``plugin_name: None`` was never
rendered and has no file (noted in ``ignored``); ``audio_rendered`` is not trusted, the file is;
a track without any stem of a class has silence for that source; a stem the metadata lists as
rendered but whose file is absent is recorded in ``missing`` and is silence.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from transfersep.data.index import DatasetError, DatasetIndex, Track, check_root, probe, require_tracks, sorted_dirs

INST_CLASSES = frozenset(
    {
        "Piano",
        "Chromatic Percussion",
        "Organ",
        "Guitar",
        "Bass",
        "Strings",
        "Strings (continued)",
        "Brass",
        "Reed",
        "Pipe",
        "Synth Lead",
        "Synth Pad",
        "Sound Effects",
        "Ethnic",
        "Percussive",
        "Sound effects",
        "Drums",
    }
)
DEFAULT_CLASSES = {
    "bass": ["Bass"],
    "drums": ["Drums"],
    "piano_guitar": ["Piano", "Guitar"],
    "other": ["Piano", "Guitar"],  # MUSDB+Slakh: Slakh's share of `other` (paper §3.1)
}
SPLIT_FOLDERS = {"train": "train", "validation": "val", "test": "test"}
TRACK_RE = re.compile(r"^Track(\d{5})$")
STEM_RE = re.compile(r"^S\d{2}$")
EXPECT = "Slakh2100 (<root>/{train,validation,test}/TrackNNNNN/ with metadata.yaml and stems/) or babyslakh_16k"


def original_split(track_id: int) -> str:
    return "train" if track_id <= 1500 else ("val" if track_id <= 1875 else "test")


def _classes(sources: Sequence[str], classes: Mapping[str, Sequence[str]] | None) -> dict[str, list[str]]:
    table = {**DEFAULT_CLASSES, **{k: list(v) for k, v in (classes or {}).items()}}
    out = {}
    for s in sources:
        if s not in table:
            raise DatasetError(f"slakh: no inst_class list for source {s!r}; set dataset.classes.{s}")
        bad = [c for c in table[s] if c not in INST_CLASSES]
        if bad:
            raise DatasetError(
                f"slakh: dataset.classes.{s} names {bad}, not Slakh inst_class values {sorted(INST_CLASSES)}"
            )
        out[s] = list(table[s])
    return out


def _track_dirs(root: Path, layout: str) -> tuple[str, list[tuple[Path, str]]]:
    split_dirs = [root / f for f in SPLIT_FOLDERS if (root / f).is_dir()]
    flat = [d for d in sorted_dirs(root) if TRACK_RE.match(d.name)]
    if layout == "auto":
        if split_dirs:
            layout = "redux"
        elif flat:
            layout = "baby" if (flat[0] / "mix.wav").is_file() or any((flat[0] / "stems").glob("*.wav")) else "original"
        else:
            if TRACK_RE.match(root.name):
                raise DatasetError(f"slakh: {root} is one track; point the root at the folder holding the splits")
            raise DatasetError(f"slakh: {root} is not Slakh2100: expected {EXPECT}")
    if layout == "redux":
        if not split_dirs:
            raise DatasetError(f"slakh: layout redux needs {root}/train, validation, test; none found")
        return layout, [
            (d, SPLIT_FOLDERS[f.name]) for f in split_dirs for d in sorted_dirs(f) if TRACK_RE.match(d.name)
        ]
    if layout == "original":
        dirs = flat + [d for f in split_dirs for d in sorted_dirs(f) if TRACK_RE.match(d.name)]
        return layout, [(d, original_split(int(TRACK_RE.match(d.name).group(1)))) for d in dirs]
    if layout == "baby":
        n = len(flat)
        n_test = max(1, n // 10) if n >= 3 else 0
        n_val = max(1, n // 10) if n >= 3 else 0
        splits = ["train"] * (n - n_test - n_val) + ["val"] * n_val + ["test"] * n_test
        return layout, list(zip(flat, splits))
    raise DatasetError(f"slakh: layout must be auto, redux, original or baby, not {layout!r}")


def _stem_class(meta_path: Path, sid: str, stem: object) -> str:
    if not isinstance(stem, dict):
        raise DatasetError(f"slakh: {meta_path}: stems.{sid} is {stem!r}, expected a mapping of stem fields")
    is_drum = stem.get("is_drum", False)
    if not isinstance(is_drum, bool):
        raise DatasetError(f"slakh: {meta_path}: stems.{sid}.is_drum is {is_drum!r}, expected true or false")
    inst = stem.get("inst_class")
    if inst not in INST_CLASSES:
        raise DatasetError(f"slakh: {meta_path}: stems.{sid}.inst_class is {inst!r}, not one of {sorted(INST_CLASSES)}")
    return "Drums" if is_drum or inst == "Drums" else inst


def read_track(d: Path, split: str, wanted: Mapping[str, list[str]]) -> Track:
    meta_path = d / "metadata.yaml"
    if not meta_path.is_file():
        raise DatasetError(f"slakh: {meta_path} is missing; every Slakh track has one (re-download {d.name})")
    try:
        meta = yaml.safe_load(meta_path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise DatasetError(f"slakh: {meta_path} is not valid YAML: {e}") from e
    stems = meta.get("stems") if isinstance(meta, dict) else None
    if not isinstance(stems, dict):
        raise DatasetError(f"slakh: {meta_path} has no `stems:` mapping (S00: {{inst_class: ..}}, ...)")
    stem_dir = d / "stems"
    files = (
        {p.stem: p for p in sorted(stem_dir.glob("S*.*")) if p.suffix.lower() in (".flac", ".wav")}
        if stem_dir.is_dir()
        else {}
    )
    sources: dict[str, list] = {s: [] for s in wanted}
    ignored, missing = [], []
    for sid in sorted(stems):
        if not STEM_RE.match(str(sid)):
            raise DatasetError(f"slakh: {meta_path}: stem id {sid!r} is not SNN (two digits)")
        cls = _stem_class(meta_path, sid, stems[sid])
        f = files.pop(sid, None)
        if f is None:
            if str(stems[sid].get("plugin_name")) == "None":
                ignored.append(f"{sid} (not rendered: plugin_name None)")
            else:
                missing.append(f"stems/{sid} ({cls}): listed in metadata.yaml but no audio file; silence")
            continue
        targets = [s for s, classes in wanted.items() if cls in classes]
        if not targets:
            ignored.append(f"{f.name} ({cls})")
        for s in targets:
            sources[s].append(probe(f))
    ignored += [f"{p.name} (not in metadata.yaml)" for p in files.values()]
    return Track(d.name, split, sources, corpus="slakh", ignored=ignored, missing=missing)


def index(
    root: str | Path,
    sources: Sequence[str] = ("bass", "drums", "piano_guitar"),
    layout: str = "auto",
    classes: Mapping[str, Sequence[str]] | None = None,
) -> DatasetIndex:
    root = check_root(root, "slakh", EXPECT)
    wanted = _classes(sources, classes)
    layout, dirs = _track_dirs(root, layout)
    tracks = require_tracks((read_track(d, s, wanted) for d, s in dirs), "slakh", root, EXPECT)
    notes = []
    if (root / "omitted").is_dir():
        notes.append("omitted/ holds duplicate tracks and is never used")
    empty = [t.name for t in tracks if not any(t.sources.values())]
    if empty:
        notes.append(f"{len(empty)} tracks have none of the sources {list(sources)} and are never sampled")
    return DatasetIndex("slakh", str(root), list(sources), tracks, layout=layout, notes=notes)
