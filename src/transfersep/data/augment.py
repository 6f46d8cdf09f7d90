"""Pitch-shift and time-stretch augmentation (paper §3: pretraining only), demucs-style modules.

Speed matters here: the goal is >= 20 ten-second excerpts per second per loader worker. One
phase-vocoder pass on STFT frames, batched over the stems of an excerpt, does pitch and tempo
together (Rubber Band through pedalboard measured ~4 excerpts/s for three stems; a phase vocoder
followed by a soxr resampling of the whole excerpt ~19/s; resampling each frame instead, below,
removes the separate resampler).

- time stretch (rate r, > 1 plays faster): analysis frames (N = 1024, hop 256) are read at
  fractional positions advancing r/p frames per output frame; magnitudes are interpolated, and each
  bin's phase advances by the measured phase difference of the two frames it reads, so a steady
  partial keeps its exact frequency. Phases come from one atan2 per bin and accumulate unwrapped
  (only the phasor matters; float32 keeps them to ~1e-4 rad over a 10-s excerpt).
- pitch (factor p = 2**(semitones/12)): each output spectrum is inverse-transformed at a size N'
  about N / p instead of N (the "resampler with a reduced ratio": frame-wise resampling, which
  drops the bins above N'/2 — the anti-aliasing low-pass — when p > 1) and the frames are
  overlap-added at hop N'/4. Bin b then sounds at b*sr/N' = p times its frequency, and the phase
  advance per output frame (omega*H at frequency omega) is what a partial at p*omega needs over
  hop H/p. N and N' are both chosen among FFT-friendly sizes (7-smooth multiples of 4, N in
  768..1344): odd sizes made the inverse FFT 3x slower. The ratio N/N' realises the wanted shift to
  within 0.07 semitone (``realised_semitones``).
- excerpts are processed with ``PAD`` samples of real context on each side, then trimmed, so the
  output's edges carry no STFT edge effects, and output sample tau holds source sample
  offset + r*tau.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch

N_FFT = 1024  # 64 ms at 16 kHz: resolves bass partials (15.6 Hz bins); the size without pitch shift
PAD = 2 * N_FFT  # source context read on each side of an augmented excerpt


def _smooth(n: int) -> bool:
    for p in (2, 3, 5, 7):
        while n % p == 0:
            n //= p
    return n == 1


_SIZES = [n for n in range(600, 1701, 4) if _smooth(n)]
# (semitones realised, analysis size, synthesis size), sorted by semitones; prefer N near 1024
_PAIRS = sorted(
    (12.0 * math.log2(a / b), abs(math.log2(a / N_FFT)), a, b) for a in _SIZES if 768 <= a <= 1344 for b in _SIZES
)
_KEYS = [p[0] for p in _PAIRS]


def fft_sizes(semitones: float) -> tuple[int, int]:
    """(analysis N, synthesis N') whose ratio N/N' is closest to 2**(semitones/12)."""
    if abs(semitones) < 1e-9:
        return N_FFT, N_FFT
    i = bisect.bisect_left(_KEYS, semitones)
    cands = [_PAIRS[j] for j in (i - 1, i) if 0 <= j < len(_PAIRS)]
    best = min(cands, key=lambda p: (round(abs(p[0] - semitones), 9), p[1]))
    return best[2], best[3]


def realised_semitones(semitones: float) -> float:
    a, b = fft_sizes(semitones)
    return 12.0 * math.log2(a / b)


@lru_cache(maxsize=256)
def _window(n: int, scale: float = 1.0) -> torch.Tensor:
    return torch.hann_window(n, periodic=True) * scale


def phase_vocoder(x: np.ndarray | torch.Tensor, stretch: float, n_ana: int = N_FFT, n_syn: int = N_FFT) -> torch.Tensor:
    """Stems [C, L] -> [C, (T_out - 1) * n_syn/4 + n_syn]: analysis frames (size n_ana, hop
    n_ana/4) read ``stretch`` frames apart, synthesised at size n_syn (pitch * n_ana/n_syn), hop n_syn/4.

    With r = stretch * n_ana / n_syn (source samples per output sample), output sample tau holds
    input sample ``r * (tau - n_syn/2) + n_ana/2``; the first and last n_syn samples are incomplete.
    """
    x = torch.as_tensor(x, dtype=torch.float32)
    c, length = x.shape
    if length < n_ana * 5 // 4:
        raise ValueError(f"phase_vocoder needs at least {n_ana * 5 // 4} samples, got {length}")
    # time-major layout [T, C, F]: gathers and the cumulative sum run over contiguous rows
    frames = x.unfold(-1, n_ana, n_ana // 4).transpose(0, 1) * _window(n_ana)  # [T, C, N]
    spec = torch.fft.rfft(frames, dim=-1)  # [T, C, F]
    spec = spec[..., : min(spec.shape[-1], n_syn // 2 + 1)]  # bins above N'/2 would alias
    t_in = spec.shape[0]
    re, im = spec.real.contiguous(), spec.imag.contiguous()
    mag = torch.hypot(re, im)
    phase = torch.atan2(im, re)
    n_out = int((t_in - 1) / stretch + 1e-9) + 1
    pos = torch.arange(n_out, dtype=torch.float64) * stretch
    idx = pos.long().clamp(max=t_in - 2)
    frac = (pos - idx).float()[:, None, None]
    m = mag.index_select(0, idx)
    m += frac * (mag.index_select(0, idx + 1) - m)
    # e_j: how far the vocoder's phase advance (the measured advance of the frame pair it reads)
    # departs from the input's own phase change between the frames read at j-1 and j
    ph_in = phase.index_select(0, idx)
    e = torch.empty_like(m)
    e[0] = 0
    torch.index_select(phase[1:] - phase[:-1], 0, idx[:-1], out=e[1:])
    e[1:] -= ph_in[1:] - ph_in[:-1]
    acc = _lock_phases(m, e, ph_in)
    f_syn = n_syn // 2 + 1
    # lower pitch (N' > N): bins above N/2 stay zero; allocated here because irfft's own zero
    # padding (n > 2 * (bins - 1)) is ~4x slower
    out = torch.empty((*m.shape[:2], f_syn), dtype=torch.complex64)
    if f_syn > m.shape[-1]:
        out[..., m.shape[-1] :] = 0
    ov = torch.view_as_real(out)[..., : m.shape[-1], :]
    torch.mul(m, torch.cos(acc), out=ov[..., 0])
    torch.mul(m, torch.sin(acc), out=ov[..., 1])
    oframes = torch.fft.irfft(out, n=n_syn, dim=-1)  # [T_out, C, N']
    # hann(N') for the overlap-add (sum of squares 1.5), times N'/N: the resized inverse FFT's gain
    oframes *= _window(n_syn, n_syn / n_ana / 1.5)
    # overlap-add: frames j, j+4, j+8, ... do not overlap, so each group is one strided add
    hop = n_syn // 4
    y = torch.zeros(c, (n_out - 1) * hop + n_syn)
    for j in range(min(4, n_out)):
        blk = oframes[j::4]
        nb = blk.shape[0]
        y[:, j * hop : j * hop + nb * n_syn] += blk.transpose(0, 1).reshape(c, nb * n_syn)
    return y


def _lock_phases(m: torch.Tensor, e: torch.Tensor, ph_in: torch.Tensor) -> torch.Tensor:
    """Output phases [T, C, F] of a phase vocoder with identity phase locking (Laroche & Dolson).

    Output phase = input phase of the frame read + an offset D that every bin shares with the
    magnitude peak it belongs to (the largest bin within +-2 bins: a Hann main lobe), so the bins
    of a partial keep the input's relation to each other. D of a peak advances by ``e`` from the
    previous frame's (already locked) offset. Without locking, the bins of a partial keep the
    phase relation the first frames gave them: a note after other content came out up to 6 dB too
    quiet and "phasey". The recursion runs over frames (two small array ops per frame).
    """
    t, c, f = m.shape
    w = f + 4  # rows padded with 2 zero bins each side: shifts by +-2 never reach another row
    mp = np.zeros((t, c, w), np.float32)
    mp[..., 2:-2] = m.numpy()
    flat_m = mp.reshape(-1)
    n = flat_m.size
    best = flat_m[2 : n - 2].copy()
    offset = np.zeros(n, np.int8)  # argmax over bins k-2..k+2 as an offset from k
    off_k, tmp = offset[2 : n - 2], np.empty(n - 4, np.int8)
    for off in (1, -1, 2, -2):  # masked writes are 20x slower than this arithmetic blend
        cand = flat_m[2 + off : n - 2 + off]
        upd = np.greater(cand, best).view(np.int8)
        np.maximum(best, cand, out=best)
        np.subtract(np.int8(off), off_k, out=tmp)
        tmp *= upd
        off_k += tmp
    src = offset.reshape(t, c * w).astype(np.int64)
    src += np.arange(c * w)
    ep = np.zeros((t, c, w), np.float32)
    ep[..., 2:-2] = e.numpy()
    e2 = ep.reshape(t, c * w)
    d = np.empty((t, c * w), dtype=np.float32)
    d[0] = 0.0
    acc = np.empty(c * w, dtype=np.float32)
    for j in range(1, t):
        np.add(d[j - 1], e2[j], out=acc)
        acc.take(src[j], out=d[j])
    return torch.from_numpy(d.reshape(t, c, w)[..., 2:-2]).add(ph_in)


def source_length(n_out: int, rate: float) -> int:
    """Source samples to read (including PAD context on both sides) for ``n_out`` output samples."""
    return int(math.ceil(rate * n_out)) + 2 * PAD


def pitch_tempo(x: np.ndarray | torch.Tensor, semitones: float, rate: float, n_out: int) -> torch.Tensor:
    """Stems [C, source_length(n_out, rate)] (PAD context each side) -> [C, n_out].

    Output sample tau holds source sample PAD + rate * tau, shifted by ``realised_semitones``.
    """
    x = torch.as_tensor(x, dtype=torch.float32)
    n_ana, n_syn = fft_sizes(semitones)
    if n_ana == n_syn and abs(rate - 1.0) < 1e-6:
        return x[:, PAD : PAD + n_out].clone()
    live = x.ne(0).any(1)
    if not bool(live.all()):  # a stem absent from the track (common in Slakh): silence stays silence
        out = x.new_zeros(x.shape[0], n_out)
        if bool(live.any()):
            out[live] = pitch_tempo(x[live], semitones, rate, n_out)
        return out
    out = phase_vocoder(x, rate * n_syn / n_ana, n_ana, n_syn)
    # source PAD + rate*j = rate*(tau - n_syn/2) + n_ana/2  =>  tau = j + (PAD - n_ana/2)/rate + n_syn/2
    s = int(round((PAD - n_ana / 2) / rate + n_syn / 2))
    res = out[:, s : s + n_out]
    if res.shape[1] < n_out:  # defensive: rounding at the far edge
        res = torch.nn.functional.pad(res, (0, n_out - res.shape[1]))
    return res


@dataclass(frozen=True)
class AugmentSpec:
    """What ``conf/augment/*.yaml`` asks for: ranges (None = off) and incoherent mixing."""

    pitch_semitones: tuple[float, float] | None = None
    stretch_rate: tuple[float, float] | None = None
    incoherent: bool = False

    @classmethod
    def from_cfg(cls, cfg: Any | None) -> AugmentSpec:
        if cfg is None:
            return cls()

        def rng(key: str) -> tuple[float, float] | None:
            v = cfg.get(key)
            if v is None:
                return None
            lo, hi = (float(a) for a in v)
            if lo > hi:
                raise ValueError(f"augment.{key}: [{lo}, {hi}] must be [low, high]")
            return (lo, hi)

        spec = cls(rng("pitch_semitones"), rng("stretch_rate"), bool(cfg.get("incoherent", False)))
        if spec.stretch_rate is not None and spec.stretch_rate[0] <= 0:
            raise ValueError("augment.stretch_rate must be positive")
        return spec

    @property
    def changes_audio(self) -> bool:
        return self.pitch_semitones is not None or self.stretch_rate is not None

    def draw(self, rng: np.random.Generator) -> tuple[float, float]:
        """(semitones, rate) of one excerpt; (0, 1) when the setting is off."""
        st = float(rng.uniform(*self.pitch_semitones)) if self.pitch_semitones else 0.0
        rate = float(rng.uniform(*self.stretch_rate)) if self.stretch_rate else 1.0
        return st, rate
