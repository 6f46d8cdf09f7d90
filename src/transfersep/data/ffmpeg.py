"""Reading multi-stream ``.stem.mp4`` files (MUSDB18) with the ffmpeg / ffprobe command-line tools.

libsndfile cannot read AAC in MP4, so the compressed MUSDB18 needs ffmpeg. It is called only to
index (ffprobe: stream headers) and once per stem when the 16 kHz cache is filled.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np

from transfersep.audio import AudioReadError
from transfersep.data.index import AudioRef

INSTALL_HINT = (
    "install ffmpeg (Debian/Ubuntu: apt-get install ffmpeg; conda: conda install -c conda-forge ffmpeg; "
    "macOS: brew install ffmpeg), or use MUSDB18-HQ (WAV folders), which needs no ffmpeg"
)


def require(tool: str = "ffmpeg") -> str:
    exe = shutil.which(tool)
    if exe is None:
        raise RuntimeError(
            f"reading MUSDB18 .stem.mp4 files needs `{tool}` on PATH, and it was not found: {INSTALL_HINT}"
        )
    return exe


def probe_streams(path: str | Path) -> list[AudioRef]:
    """One AudioRef per audio stream of ``path`` (sample rate, channels, frames from the headers)."""
    exe = require("ffprobe")
    cmd = [
        exe,
        "-v",
        "error",
        "-select_streams",
        "a",
        "-show_entries",
        "stream=index,sample_rate,channels,duration,duration_ts,time_base",
        "-of",
        "json",
        str(path),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise AudioReadError(f"ffprobe cannot read {path}: {proc.stderr.strip()[:300]}; re-download the file")
    streams = json.loads(proc.stdout or "{}").get("streams", [])
    refs = []
    for k, s in enumerate(streams):
        sr = int(s.get("sample_rate", 0))
        dur = float(s.get("duration", 0.0) or 0.0)
        if sr <= 0 or dur <= 0:
            raise AudioReadError(f"{path}: audio stream {k} has no sample rate/duration in its header")
        refs.append(AudioRef(str(Path(path).resolve()), sr, int(s.get("channels", 2)), int(round(dur * sr)), k))
    return refs


def decode_stream(ref: AudioRef) -> tuple[np.ndarray, int]:
    """Decode audio stream ``ref.stream`` of ``ref.path`` at its own rate -> ([channels, N] float32, sr)."""
    exe = require("ffmpeg")
    ch = max(1, ref.channels)
    cmd = [
        exe,
        "-v",
        "error",
        "-nostdin",
        "-i",
        ref.path,
        "-map",
        f"0:a:{ref.stream}",
        "-f",
        "f32le",
        "-acodec",
        "pcm_f32le",
        "-ac",
        str(ch),
        "-ar",
        str(ref.sample_rate),
        "-",
    ]
    proc = subprocess.run(cmd, capture_output=True)
    if proc.returncode != 0:
        raise AudioReadError(
            f"ffmpeg cannot decode stream {ref.stream} of {ref.path}: "
            f"{proc.stderr.decode(errors='replace').strip()[:300]}; the file is truncated or corrupt"
        )
    data = np.frombuffer(proc.stdout, dtype="<f4")
    data = data[: len(data) // ch * ch].reshape(-1, ch).T
    return np.ascontiguousarray(data, dtype=np.float32), ref.sample_rate
