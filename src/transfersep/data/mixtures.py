"""Any folder of audio files as an unlabeled corpus: every file is one track with one source, ``mix``.

The folder is searched recursively; files and folders whose names start with ``.`` are skipped
(``.DS_Store``, macOS ``._song.wav`` resource forks). Formats: everything libsndfile reads
(``SOUNDFILE_EXT``: WAV, FLAC, OGG/Opus, MP3, AIFF, CAF, W64, RF64) and, through ffmpeg, the
compressed containers it cannot (``FFMPEG_EXT``: M4A/AAC, MP4, WMA, WebM, MKA; of a file with several
audio streams the first is read, which for a MUSDB18 ``.stem.mp4`` is its mixture). A libsndfile
format that this machine's libsndfile cannot open (an old build without MP3) is read through
ffmpeg when it is installed. Any sample rate and channel count: the 16 kHz cache downmixes and
resamples (``cache.py``).

Split: about one file in ``VAL_EVERY`` is held out for validation, chosen by a hash of its path
relative to the root, so the choice does not depend on the machine, the order files are listed in,
or on files added later (unless the minimum below is what picks them); with two or more files at
least one is held out, with ``MIN_VAL_PAIR`` or more at least two (a MixIT validation pair needs two
tracks). There is no test split: an unlabeled corpus serves pretraining only.
"""

from __future__ import annotations

import hashlib
import shlex
import shutil
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from transfersep.audio import AudioReadError
from transfersep.data.index import AudioRef, DatasetError, DatasetIndex, Track, check_root, probe

NAME = "mixtures"
SOURCE = "mix"
SOUNDFILE_EXT = (".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc", ".caf", ".w64")
SOUNDFILE_EXT += (".rf64",)
FFMPEG_EXT = (".m4a", ".mp4", ".aac", ".wma", ".webm", ".mka")
AUDIO_EXT = SOUNDFILE_EXT + FFMPEG_EXT
VAL_EVERY = 10
MIN_VAL_PAIR = 5
FFMPEG_HINT = "install ffmpeg (Debian/Ubuntu: apt-get install ffmpeg; conda: conda install -c conda-forge ffmpeg)"
EXPECT = "a folder of audio files (searched recursively; any rate and channel count)"


def audio_files(root: Path) -> list[Path]:
    """The audio files under ``root`` (recursive, sorted by relative path, hidden entries skipped)."""
    out = []
    for p in root.rglob("*"):
        rel = p.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if p.suffix.lower() in AUDIO_EXT and p.is_file():
            out.append(p)
    return sorted(out, key=lambda p: p.relative_to(root).as_posix())


class Unreadable(DatasetError):
    """One file of the folder that no decoder here reads."""

    def __init__(self, path: Path, why: str):
        self.path, self.why = path, why
        super().__init__(f"{NAME}: cannot read {path} ({why}); remove it from the folder or {convert_hint(path)}")


def convert_hint(path: Path) -> str:
    """A conversion that can work: into a new file (ffmpeg cannot write the file it reads), the
    original moved out of the folder after, since the index reads every audio file there."""
    out = path.with_name(f"{path.stem}-converted.flac") if path.suffix.lower() == ".flac" else path.with_suffix(".flac")
    return (
        f"convert it into a new file and move the original out of the folder "
        f"(e.g. ffmpeg -i {shlex.quote(path.name)} {shlex.quote(out.name)})"
    )


def _unreadable(path: Path, why: str) -> Unreadable:
    return Unreadable(path, why)


def _has_ffmpeg() -> bool:
    return shutil.which("ffprobe") is not None and shutil.which("ffmpeg") is not None


def _probe_ffmpeg(path: Path) -> AudioRef:
    from transfersep.data import ffmpeg

    if not _has_ffmpeg():
        raise DatasetError(
            f"{NAME}: reading {path} ({path.suffix} files) needs ffmpeg, which was not found: {FFMPEG_HINT}; "
            "or convert the file to FLAC"
        )
    try:
        refs = ffmpeg.probe_streams(path)
    except AudioReadError as e:
        raise _unreadable(path, "ffmpeg cannot decode it") from e
    if not refs:
        raise _unreadable(path, "it holds no audio stream")
    return refs[0]


def probe_file(path: Path) -> AudioRef:
    """The header of one file: libsndfile first, ffmpeg for the containers libsndfile cannot read."""
    if path.suffix.lower() in FFMPEG_EXT:
        return _probe_ffmpeg(path)
    try:
        return probe(path)
    except AudioReadError as e:
        if not _has_ffmpeg():
            raise _unreadable(path, "libsndfile cannot decode it") from e
        try:
            return _probe_ffmpeg(path)
        except DatasetError:
            raise _unreadable(path, "neither libsndfile nor ffmpeg can decode it") from e


def path_hash(rel: str) -> float:
    """A position in [0, 1) for a relative path, the same on every machine (not Python's ``hash``)."""
    return int.from_bytes(hashlib.sha1(rel.encode()).digest()[:8], "big") / 2.0**64


def val_names(rels: Sequence[str]) -> set[str]:
    """The relative paths held out for validation (see the module docstring)."""
    n = len(rels)
    minimum = 0 if n < 2 else (1 if n < MIN_VAL_PAIR else 2)
    ranked = sorted(rels, key=lambda r: (path_hash(r), r))
    k = max(minimum, sum(path_hash(r) < 1.0 / VAL_EVERY for r in rels))
    return set(ranked[:k])


UNREADABLE = ("refuse", "skip")
SHOWN = 20  # unreadable files named in the one-line error; the rest are counted


def _probe_all(files: list[Path], root: Path, policy: str) -> tuple[dict[Path, AudioRef], list[Unreadable]]:
    """Every file's header; the unreadable ones all found in one pass, so a folder is fixed in one go."""
    if policy not in UNREADABLE:
        raise DatasetError(f"{NAME}: unreadable={policy!r}; one of {', '.join(UNREADABLE)}")
    refs, bad = {}, []
    for f in files:
        try:
            refs[f] = probe_file(f)
        except Unreadable as e:
            bad.append(e)
    if bad and policy == "refuse":
        named = "; ".join(f"{e.path.relative_to(root)} ({e.why})" for e in bad[:SHOWN])
        more = f"; and {len(bad) - SHOWN} more" if len(bad) > SHOWN else ""
        raise DatasetError(
            f"{NAME}: {len(bad)} of {len(files)} files under {root} cannot be read: {named}{more}; remove them "
            f"or {convert_hint(bad[0].path)}, or set the dataset's unreadable=skip to leave them out"
        )
    return refs, bad


def index(root: str | Path, sources: Sequence[str] | None = None, unreadable: str = "refuse") -> DatasetIndex:
    """The index of every audio file under ``root``: one track each, with the single source ``mix``.
    ``unreadable``: ``refuse`` (every unreadable file named in one error) or ``skip`` (left out, listed
    in the index's notes)."""
    root = check_root(root, NAME, EXPECT)
    if sources and list(sources) != [SOURCE]:
        raise DatasetError(
            f"{NAME}: a folder of mixtures has one source, {SOURCE}; set pretrain.dataset.sources=[{SOURCE}] "
            f"(got {list(sources)})"
        )
    files = audio_files(root)
    if not files:
        raise DatasetError(
            f"{NAME}: no audio files under {root} (looked for {', '.join(AUDIO_EXT)}, in every subfolder); "
            "point paths.mixtures at a folder of audio files"
        )
    refs, bad = _probe_all(files, root, unreadable)
    files = [f for f in files if f in refs]
    if not files:
        raise DatasetError(
            f"{NAME}: none of the {len(bad)} audio files under {root} can be read; {convert_hint(bad[0].path)}"
        )
    rels = [f.relative_to(root).as_posix() for f in files]
    held = val_names(rels)
    tracks = [
        Track(rel, "val" if rel in held else "train", {SOURCE: [refs[f]]}, corpus=NAME) for f, rel in zip(files, rels)
    ]
    via_ffmpeg = sum(t.sources[SOURCE][0].stream is not None for t in tracks)
    notes = [
        f"{len(tracks)} audio files; {len(held)} held out for validation (about 1 in {VAL_EVERY}, by a hash of "
        "the path); no test split (pretraining only)"
    ]
    if via_ffmpeg:
        notes.append(f"{via_ffmpeg} file(s) are read through ffmpeg")
    if bad:
        notes.append(
            f"{len(bad)} unreadable file(s) left out (unreadable=skip): "
            + ", ".join(e.path.relative_to(root).as_posix() for e in bad)
        )
    return DatasetIndex(NAME, str(root), [SOURCE], tracks, layout="folder", notes=notes)


def unlabeled(idx: DatasetIndex) -> DatasetIndex:
    """``idx`` read as mixtures only: each track's declared sources collapsed into the one source
    ``mix`` (every file of every class, summed when read), so a self-supervised pretraining hears
    exactly the audio the supervised one mixes from the same config, and no stem is ever a target.
    A file declared under two classes is kept twice, as mixing the labeled set would sum it twice."""
    if idx.source_names == [SOURCE]:
        return idx
    tracks = [replace(t, sources={SOURCE: [r for refs in t.sources.values() for r in refs]}) for t in idx.tracks]
    note = f"unlabeled: the sources {', '.join(idx.source_names)} of each track are summed into one mixture"
    return DatasetIndex(idx.dataset, idx.root, [SOURCE], tracks, idx.layout, [*idx.notes, note])
