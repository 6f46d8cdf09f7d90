"""Remixpacks and any folder of stems: ``<root>/<split>/<song>/<stem>.wav`` (or ``<root>/<song>/...``).

Each stem file is mapped to a class by **case-insensitive name patterns** matched against the
file name without its extension. A pattern is a shell glob matched against the whole name
(``*kick*``, ``snare?``) unless it is written ``re:<regex>`` (searched anywhere in the name, e.g.
``re:(^|[^a-z])hh([^a-z]|$)``). A stem matching no class, or the patterns of two classes (a
"kick+snare" bus would corrupt both), is ignored and listed in the index under ``ignored``. Several
stems of one class in a song are summed.

Every class must be found in every song: a song without a stem of some class is refused, naming the
class, the song and the files it holds (``missing_sources: refuse``, the default), or, with
``missing_sources: skip``, left out of the index with a note that the data-inspection command and
the run's summary print. A class is never trained or scored as silence unannounced.

Splits: folders named ``train``, ``valid``/``validation``/``val``, ``test`` under the root hold the
songs of that split. Without split folders (a flat folder of songs, as a remix-pack scrape comes),
songs are split by name: sorted, every ``test_every``-th song is test (default 3: about the
paper's 192 / 96 min for Remixpacks) and every ``val_every``-th of the rest validation (default
0 = validation excerpts come from the training songs).

Folds (option ``fold``, default 0 = the split above): without split folders, fold f makes the k-th
song (sorted, from 0) test when (k + f) % test_every == test_every - 1, validation as above among
the rest; the ``test_every`` folds test every song exactly once. Split folders fix the split, and
``test_every`` 0 or 1 leaves nothing to rotate: fold 0 only.

Audio files: .wav, .flac, .ogg, .aif/.aiff (anything libsndfile reads).
"""

from __future__ import annotations

import fnmatch
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from transfersep.data import folds
from transfersep.data.index import (
    DatasetError,
    DatasetIndex,
    Track,
    check_root,
    config_key,
    probe,
    require_tracks,
    sorted_dirs,
)

AUDIO_EXT = (".wav", ".flac", ".ogg", ".aif", ".aiff")
SPLIT_NAMES = {"train": "train", "valid": "val", "validation": "val", "val": "val", "test": "test"}
# Remixpacks: producer-named drum stems ("Kick 1.wav", "SNARE_top.wav", "HiHat Open.wav", "OH.wav").
_WORD = "re:(^|[^a-z]){}([^a-z]|$)"  # an abbreviation standing alone: "BD", "kit_sd_2"
REMIXPACKS_PATTERNS = {
    "snare": ["*snare*", "*snr*", _WORD.format("sd"), "*rimshot*"],
    "kick_drum": ["*kick*", "*kik*", _WORD.format("bd"), "*bassdrum*", "*bass drum*", "*bass_drum*"],
    "cymbals": [
        "*cymbal*",
        "*hihat*",
        "*hi-hat*",
        "*hi hat*",
        "*hi_hat*",
        "*hats*",
        _WORD.format("hh"),
        _WORD.format("hat"),
        _WORD.format("oh"),
        _WORD.format("overheads?"),
        "*ride*",
        "*crash*",
        "*splash*",
        "*china*",
    ],
}
EXPECT = "a folder of songs (<root>/[train|test/]<song>/<stem>.wav)"
MISSING_OPTION = "missing_sources"
MISSING_POLICIES = ("refuse", "skip")
_SHOWN = 12  # file names listed in a message before "..."

log = logging.getLogger("transfersep")


class Matcher:
    """Compiled class -> patterns table; ``classify(name)`` -> class or None."""

    def __init__(self, sources: Sequence[str], patterns: Mapping[str, Sequence[str]]):
        self.table: list[tuple[str, list[tuple[re.Pattern, bool]]]] = []  # (regex, is_glob)
        for s in sources:
            pats = patterns.get(s)
            if not pats:
                raise DatasetError(
                    f"stems: no name patterns for class {s!r}; set dataset.patterns.{s} "
                    f"(globs like '*{s}*' or 're:<regex>')"
                )
            if isinstance(pats, str):
                pats = [pats]
            compiled = []
            for p in pats:
                try:
                    glob = not p.startswith("re:")
                    rx = fnmatch.translate(p) if glob else p[3:]
                    compiled.append((re.compile(rx, re.IGNORECASE), glob))
                except re.error as e:
                    raise DatasetError(f"stems: dataset.patterns.{s}: {p!r} is not a valid pattern: {e}") from e
            self.table.append((s, compiled))

    def matches(self, stem_name: str) -> list[str]:
        """Every class whose patterns match ``stem_name`` (file name without extension)."""
        return [
            cls
            for cls, pats in self.table
            if any((rx.fullmatch(stem_name) if glob else rx.search(stem_name)) for rx, glob in pats)
        ]


def _song_dirs(
    root: Path, name: str, test_every: int, val_every: int, fold: int = 0
) -> tuple[list[tuple[Path, str]], int]:
    """(song folder, split) of every song for ``fold``, and the number of folds."""
    split_dirs = [d for d in sorted_dirs(root) if d.name.lower() in SPLIT_NAMES]
    if split_dirs:
        if fold:
            shown = "/".join(d.name for d in split_dirs)
            raise folds.refuse(name, fold, 1, f"{root} has split folders ({shown}), which fix the split: fold 0 only")
        return [(s, SPLIT_NAMES[d.name.lower()]) for d in split_dirs for s in sorted_dirs(d)], 1
    count = max(1, test_every)
    if fold >= count:
        rotates = f"makes {folds.span(count)}" if count > 1 else "leaves nothing to rotate, fold 0 only"
        raise folds.refuse(name, fold, count, f"test_every={test_every} {rotates}")
    songs = sorted_dirs(root)
    out = []
    rest = 0
    for k, s in enumerate(songs):
        if test_every and (k + fold) % test_every == test_every - 1:
            out.append((s, "test"))
            continue
        rest += 1
        out.append((s, "val" if val_every and rest % val_every == 0 else "train"))
    return out, count


def index(
    root: str | Path,
    sources: Sequence[str],
    patterns: Mapping[str, Sequence[str]] | None = None,
    name: str = "stems",
    test_every: int = 3,
    val_every: int = 0,
    missing_sources: str = "refuse",
    fold: int = 0,
) -> DatasetIndex:
    """Index the folder of songs at ``root``; ``fold`` picks the test songs (see the module docstring)."""
    fold = folds.check(fold, name)
    root = check_root(root, name, EXPECT)
    if not sources or any(s in (None, "???") for s in sources):
        raise DatasetError(
            f"{name}: set the class names: 'downstream.dataset.sources=[lead,rhythm]' and their patterns"
        )
    if missing_sources not in MISSING_POLICIES:
        raise DatasetError(
            f"{config_key(name, MISSING_OPTION)}={missing_sources!r}: choose one of {', '.join(MISSING_POLICIES)}"
        )
    matcher = Matcher(sources, patterns or (REMIXPACKS_PATTERNS if name == "remixpacks" else {}))
    tracks, folders = [], {}
    songs, count = _song_dirs(root, name, test_every, val_every, fold)
    for song, split in songs:
        files = sorted(p for p in song.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXT)
        src: dict[str, list] = {s: [] for s in sources}
        ignored, seen = [], []
        for f in files:
            hits = matcher.matches(f.stem)
            if len(hits) == 1:
                src[hits[0]].append(probe(f))
            else:
                why = "matches no class" if not hits else f"matches several classes: {hits}"
                ignored.append(f"{f.relative_to(song)} ({why})")
            seen.append(f"{f.relative_to(song).as_posix()} ({'+'.join(hits) or 'no class'})")
        if files:
            tracks.append(Track(song.name, split, src, corpus=name, ignored=ignored))
            folders[id(tracks[-1])] = (song, seen)
    tracks = require_tracks(tracks, name, root, EXPECT)
    if not any(any(t.sources.values()) for t in tracks):
        raise DatasetError(
            f"{name}: no stem under {root} matches the patterns of {list(sources)}; "
            f"check dataset.patterns (matching is case-insensitive on the file name without extension)"
        )
    notes = [f"stems matching no class are ignored; {sum(len(t.ignored) for t in tracks)} ignored in all"]
    tracks, skipped = _complete_songs(tracks, folders, root, name, missing_sources)
    if skipped:
        note = (
            f"{MISSING_OPTION}=skip: {len(skipped)} song(s) lacking a class were left out: "
            + ", ".join(skipped[:10])
            + (" ..." if len(skipped) > 10 else "")
        )
        log.warning("%s: %s", name, note)
        notes.append(note)
    notes.insert(0, folds.note(fold, count, "songs", tracks))
    return DatasetIndex(name, str(root), list(sources), tracks, layout="stems", notes=notes)


def _complete_songs(
    tracks: list[Track], folders: dict[int, tuple[Path, list[str]]], root: Path, name: str, policy: str
) -> tuple[list[Track], list[str]]:
    """The songs holding every class, and ``"<song> (<classes>)"`` of those left out (``skip``);
    with ``refuse`` the first incomplete song raises ``DatasetError`` naming its class and files."""
    lacking = [(t, [s for s, refs in t.sources.items() if not refs]) for t in tracks]
    incomplete = [(t, miss) for t, miss in lacking if miss]
    if not incomplete:
        return tracks, []
    key = config_key(name, MISSING_OPTION)
    if policy == "refuse":
        t, miss = incomplete[0]
        song, seen = folders[id(t)]
        others = f" (and {len(incomplete) - 1} other song(s))" if len(incomplete) > 1 else ""
        files = ", ".join(seen[:_SHOWN]) + (f", ... ({len(seen)} files)" if len(seen) > _SHOWN else "")
        raise DatasetError(
            f"{name}: class {miss[0]!r} matches no file in song {song.relative_to(root).as_posix()}{others}; "
            f"its files: {files}. Add a pattern for it ({config_key(name, 'patterns')}.{miss[0]}), or set "
            f"{key}=skip to leave out the songs that lack a class"
        )
    keep = [t for t, miss in lacking if not miss]
    if not keep:
        raise DatasetError(
            f"{name}: every song under {root} lacks a class ({incomplete[0][0].name}: {', '.join(incomplete[0][1])}); "
            f"check {config_key(name, 'patterns')}"
        )
    return keep, [f"{t.name} ({', '.join(miss)})" for t, miss in incomplete]
