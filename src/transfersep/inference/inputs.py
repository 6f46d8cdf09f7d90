"""What separation accepts: input files it can read, and source names the model has.

``check_input(path)`` turns every way an input can be wrong into one ``AudioReadError`` line that
says what to do: a missing file, a folder, a format libsndfile cannot read (it lists the ones it
can), a file without a single frame. ``pick_sources`` checks ``--stems`` against the model.
"""

from __future__ import annotations

import os
from pathlib import Path

import soundfile as sf

from transfersep import audio

AUDIO_FORMATS = "WAV, FLAC, OGG (Vorbis/Opus), MP3, AIFF, CAF, W64, RF64"


def check_input(path: str | os.PathLike) -> sf._SoundFileInfo:
    """The header of an input file, or ``AudioReadError`` with one line saying what to do:
    a missing file, a folder, a format libsndfile cannot read (M4A/AAC, WMA, video...), no audio."""
    path = Path(path)
    if path.is_dir():
        raise audio.AudioReadError(f"{path} is a folder; give audio files (e.g. {path}/*.wav)")
    if not path.exists():
        raise audio.AudioReadError(f"{path}: no such file")
    try:
        info = sf.info(str(path))
    except Exception as e:  # soundfile: LibsndfileError/RuntimeError/TypeError
        known = {f.lower() for f in sf.available_formats()} | {"aif", "oga", "opus", "wave"}
        if path.suffix.lower().lstrip(".") not in known:
            raise audio.AudioReadError(
                f"{path}: {path.suffix or 'this'} files cannot be read (libsndfile reads {AUDIO_FORMATS}); "
                f"convert it first, e.g. ffmpeg -i '{path}' '{path.with_suffix('.flac').name}'"
            ) from e
        raise audio.AudioReadError(
            f"cannot read audio header of {path}: {e}. The file is truncated or corrupt "
            f"(or not really {path.suffix.lstrip('.').upper()}); re-download or re-export it"
        ) from e
    if info.frames <= 0:
        raise audio.AudioReadError(f"{path}: holds no audio (0 frames); nothing to separate")
    return info


def pick_sources(available: list[str], wanted: list[str] | None) -> list[int]:
    """Indices of ``wanted`` sources (all when None), matched ignoring case as the stem patterns
    are; ValueError names the unknown ones."""
    if not wanted:
        return list(range(len(available)))
    lower = [a.lower() for a in available]
    unknown = [w for w in wanted if w.lower() not in lower]
    if unknown:
        raise ValueError(
            f"--stems {','.join(wanted)}: the model has no source {', '.join(unknown)}; "
            f"it separates {','.join(available)}"
        )
    return list(dict.fromkeys(lower.index(w.lower()) for w in wanted))
