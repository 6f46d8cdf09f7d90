"""Audio conventions of the tool: 16 kHz mono float32, the paper's STFT, file I/O.

Everything inside the tool is 16 kHz mono (paper §3.2). The STFT is 512-sample windows, hop 128,
sqrt-Hann (so analysis + synthesis windows multiply to a Hann window and overlap-add is exact),
257 frequency bins. Spectrogram tensors are laid out [batch, frames, bins] because the BLSTM
runs over frames and that layout is contiguous for it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import torch

SAMPLE_RATE = 16_000


@dataclass(frozen=True)
class STFTConfig:
    n_fft: int = 512
    hop_length: int = 128
    sample_rate: int = SAMPLE_RATE

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1

    def n_frames(self, n_samples: int) -> int:
        return n_samples // self.hop_length + 1  # center=True padding


class STFT(torch.nn.Module):
    """sqrt-Hann STFT / iSTFT pair. ``forward``: wave [B, N] -> complex spec [B, T, F]."""

    def __init__(self, cfg: STFTConfig = STFTConfig()):
        super().__init__()
        self.cfg = cfg
        window = torch.hann_window(cfg.n_fft, periodic=True).sqrt()
        self.register_buffer("window", window, persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        lead = wave.shape[:-1]
        spec = torch.stft(
            wave.reshape(-1, wave.shape[-1]).float(),
            n_fft=self.cfg.n_fft,
            hop_length=self.cfg.hop_length,
            window=self.window,
            center=True,
            return_complex=True,
        )  # [B, F, T]
        spec = spec.transpose(-1, -2)
        return spec.reshape(*lead, *spec.shape[-2:])

    def inverse(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        """complex spec [..., T, F] -> wave [..., length]."""
        lead = spec.shape[:-2]
        flat = spec.reshape(-1, *spec.shape[-2:]).transpose(-1, -2)
        wave = torch.istft(
            flat,
            n_fft=self.cfg.n_fft,
            hop_length=self.cfg.hop_length,
            window=self.window,
            center=True,
            length=length,
        )
        return wave.reshape(*lead, length)


class AudioReadError(RuntimeError):
    """An audio file could not be read; the message names the file and what to do."""


def info(path: str | os.PathLike) -> sf._SoundFileInfo:
    try:
        return sf.info(str(path))
    except Exception as e:  # soundfile raises RuntimeError/LibsndfileError/TypeError
        raise AudioReadError(
            f"cannot read audio header of {path}: {e}. The file is missing, truncated or not "
            "WAV/FLAC/OGG; re-download or re-export it."
        ) from e


def read(path: str | os.PathLike, start: int = 0, frames: int = -1, always_2d: bool = True) -> tuple[np.ndarray, int]:
    """Read [channels, samples] float32 (optionally a window) without loading the whole file."""
    try:
        data, sr = sf.read(str(path), start=start, frames=frames, dtype="float32", always_2d=True)
    except Exception as e:
        raise AudioReadError(
            f"cannot decode {path}: {e}. The file is truncated or corrupt; re-download or re-export it."
        ) from e
    data = data.T
    return (data if always_2d else data[0]), sr


def to_mono(x: np.ndarray) -> np.ndarray:
    """[C, N] -> [N] by averaging channels."""
    return x.mean(axis=0) if x.ndim == 2 else x


def resample(x: np.ndarray, sr_in: int, sr_out: int, quality: str = "HQ") -> np.ndarray:
    """Resample [N] or [C, N] with soxr (band-limited, fast). No-op when rates match."""
    if sr_in == sr_out:
        return x.astype(np.float32, copy=False)
    y = soxr.resample(np.ascontiguousarray(x.T), sr_in, sr_out, quality=quality)
    return np.ascontiguousarray(y.T).astype(np.float32, copy=False)


def write(path: str | os.PathLike, data: np.ndarray, sr: int, subtype: str | None = None) -> Path:
    """Write [N] or [C, N] atomically (tmp file + rename) in the format given by the suffix."""
    from transfersep.files import atomic_write

    path = Path(path)
    arr = np.asarray(data, dtype=np.float32)
    arr = arr.T if arr.ndim == 2 else arr
    fmt = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG"}.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: unsupported audio extension; use .wav or .flac")
    atomic_write(path, lambda tmp: sf.write(tmp, arr, sr, format=fmt, subtype=subtype))
    return path
