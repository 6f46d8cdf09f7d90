"""The index every loader builds: tracks -> sources -> files, split, duration.

Durations come from the audio headers (soundfile, or ffprobe for ``.stem.mp4``); nothing is
decoded while indexing. A source maps to a *list* of files that are summed (MUSDB accompaniment
= drums + bass + other; Slakh bass = every bass stem of the track); an empty list means the track
has no such source and it is silence there (Slakh tracks without a guitar, say).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from transfersep.audio import AudioReadError, info

SPLITS = ("train", "val", "test")
# the corpora of conf/pretrain; every other set is downstream
# the pretraining corpora (their keys are under pretrain.dataset); each declares itself (data.loaders)
PRETRAIN_SETS: set[str] = {"musdb", "slakh", "both", "mixtures", "librimix", "wsj0mix", "librimix_slakh"}


def config_key(dataset: str, option: str) -> str:
    """The full config key of a loader option, as a run's command line sets it:
    ``pretrain.dataset.<option>`` or ``downstream.dataset.<option>``."""
    return f"{'pretrain' if dataset in PRETRAIN_SETS else 'downstream'}.dataset.{option}"


class DatasetError(ValueError):
    """The root does not look like the dataset asked for, or its metadata is malformed.

    The message names the path (file or folder) and what to do.
    """


@dataclass(frozen=True)
class AudioRef:
    """One audio file (or one stream of a multi-stream ``.stem.mp4``) as its header describes it."""

    path: str
    sample_rate: int
    channels: int
    frames: int
    stream: int | None = None  # audio stream index inside a .stem.mp4

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


@dataclass
class Track:
    """A song (or take, or piece) with its sources; ``ignored``/``missing`` explain what was left out."""

    name: str
    split: str
    sources: dict[str, list[AudioRef]]
    corpus: str = ""
    ignored: list[str] = field(default_factory=list)  # files present but mapped to no source
    missing: list[str] = field(default_factory=list)  # files the metadata promises but are absent

    @property
    def seconds(self) -> float:
        """Length of the longest file: shorter stems are padded with silence."""
        return max((r.seconds for refs in self.sources.values() for r in refs), default=0.0)

    def has(self, source: str) -> bool:
        return bool(self.sources.get(source))


@dataclass
class DatasetIndex:
    dataset: str
    root: str
    source_names: list[str]
    tracks: list[Track]
    layout: str = ""
    notes: list[str] = field(default_factory=list)

    def split(self, name: str) -> list[Track]:
        return [t for t in self.tracks if t.split == name]

    def summary(self) -> dict:
        out = {"dataset": self.dataset, "root": self.root, "layout": self.layout, "sources": self.source_names}
        for s in SPLITS:
            tr = self.split(s)
            out[s] = {"tracks": len(tr), "minutes": round(sum(t.seconds for t in tr) / 60, 2)}
        return out

    def to_json(self) -> str:
        def track(t: Track) -> dict:
            d = asdict(t)
            d["seconds"] = round(t.seconds, 3)
            d["sources"] = {
                k: [
                    {
                        "path": r.path,
                        "seconds": round(r.seconds, 3),
                        "sample_rate": r.sample_rate,
                        "channels": r.channels,
                        **({"stream": r.stream} if r.stream is not None else {}),
                    }
                    for r in v
                ]
                for k, v in t.sources.items()
            }
            return d

        return json.dumps(
            {"summary": self.summary(), "notes": self.notes, "tracks": [track(t) for t in self.tracks]},
            indent=2,
        )


def probe(path: str | os.PathLike) -> AudioRef:
    """Header of a WAV/FLAC file (no decoding); AudioReadError names the file when unreadable."""
    i = info(path)
    if i.samplerate <= 0 or i.channels <= 0:
        raise AudioReadError(f"{path}: header says {i.samplerate} Hz, {i.channels} channels; re-export it")
    return AudioRef(str(Path(path).resolve()), int(i.samplerate), int(i.channels), int(i.frames))


def check_root(root: str | os.PathLike, dataset: str, expect: str) -> Path:
    """The root as a Path; DatasetError if it is missing or not a folder."""
    p = Path(root).expanduser()
    if not p.exists():
        raise DatasetError(
            f"{dataset}: root {p} does not exist. Point it at {expect} "
            f"(paths.{dataset}=... on the command line or the environment variable in conf/paths)."
        )
    if not p.is_dir():
        raise DatasetError(f"{dataset}: root {p} is a file, not a folder; expected {expect}")
    return p.resolve()


def sorted_dirs(p: Path) -> list[Path]:
    return sorted((c for c in p.iterdir() if c.is_dir() and not c.name.startswith(".")), key=lambda c: c.name)


def require_tracks(tracks: Iterable[Track], dataset: str, root: Path, expect: str) -> list[Track]:
    tracks = list(tracks)
    if not tracks:
        raise DatasetError(f"{dataset}: found no tracks under {root}; expected {expect}")
    return tracks
