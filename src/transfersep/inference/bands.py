"""Whole-band sources that add up to the input: the band above the model's, and mixture consistency.

The model hears 16 kHz audio, so its sources end at 8 kHz (soxr's HQ filter passes up to ~7.3 kHz),
and a mask model's sources need not add up to the mixture. Two steps, after the sources are back
at the input's rate, make every output whole-band and their sum the input:

1. **The band above the model's** (``high = input - the input's round trip through 16 kHz``, so it
   is exactly what the model never heard) goes to the sources in proportion to each source's
   magnitude in the top of the model's band (``TOP_BAND_HZ``, 5.5-7.5 kHz), frame by frame:
   ``share_c(t) = sum_f |S_c(t, f)| / sum_c' sum_f |S_c'(t, f)|`` over those bins, i.e. the
   magnitude-weighted mean of each source's mask there, normalised to sum to one. Measured on the
   demo corpus's 112 Slakh-style tracks rendered at 44.1 kHz (true stems through 16 kHz as the
   sources, so only the rule is measured; the band above ~7.3 kHz holds -24.5 dB of their energy):
   the estimate of each stem's high band reached 9.9 dB SNR with this rule, 9.5 dB with energy
   instead of magnitude, 10.0 dB with the unnormalised mean mask (whose shares do not sum to one),
   2.6 dB with shares of the whole-band energy and 1.0 dB with an equal split; whole-band SNR of the
   stems 34.4 dB against 24.5 dB for the band-limited ones.
2. **Mixture consistency** (Wisdom et al. 2019, "Differentiable consistency constraints for improved
   deep speech enhancement", ICASSP): what no source took, ``residual = input - sum of sources``, is
   distributed over the sources in proportion to their energy (their weighted projection), frame
   by frame, so a silent source stays silent. With ``residual=True`` it is kept as a source of its
   own instead (``residual``), and the sources plus it add up to the input.

Shares are computed per chunk at 16 kHz (``with_shares``), travel through the same overlap-add and
resampler as the sources, and are renormalised at the input's rate (``combine``), where the sums are
made exact in float64. The cost: 20 s of 44.1 kHz stereo took 6.5-7.9 s
instead of 5.7-5.8 s with the paper-size model on one busy CPU thread (the shares' STFT, and three
times as many channels through the resampler back to the input's rate).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from transfersep.audio import STFT

TOP_BAND_HZ = (5500.0, 7500.0)


def channels_per_source(raw: bool) -> int:
    """How many 16 kHz signals ``with_shares`` returns per source (plus one for the mixture)."""
    return 1 if raw else 3


def _shares(v: torch.Tensor) -> torch.Tensor:
    """``v [B, C, T] >= 0`` as shares over C; an equal split where all are (nearly) zero."""
    total = v.sum(1, keepdim=True)
    equal = torch.full_like(v, 1.0 / v.shape[1])
    return torch.where(total > 1e-12, v / total.clamp_min(1e-12), equal)


def _to_samples(frames: torch.Tensor, length: int, hop: int) -> torch.Tensor:
    """Per-frame values ``[..., T]`` (frame t centred on sample t*hop) linearly interpolated to ``[..., length]``."""
    pos = torch.arange(length, device=frames.device, dtype=torch.float32) / hop
    i0 = pos.floor().long().clamp(max=frames.shape[-1] - 1)
    i1 = (i0 + 1).clamp(max=frames.shape[-1] - 1)
    frac = pos - i0.float()
    return frames[..., i0] * (1 - frac) + frames[..., i1] * frac


def with_shares(run: Callable[[torch.Tensor], torch.Tensor], stft: STFT) -> Callable[[torch.Tensor], torch.Tensor]:
    """``run(mix [B, L]) -> [B, C, L]`` extended to ``[B, 3C + 1, L]``: the sources, their shares of the
    band above the model's, their shares of the residual, and the chunk's mixture itself (which the
    overlap-add and the resampler turn into the input's round trip through 16 kHz)."""
    freqs = torch.fft.rfftfreq(stft.cfg.n_fft, 1.0 / stft.cfg.sample_rate)
    top = (freqs >= TOP_BAND_HZ[0]) & (freqs <= TOP_BAND_HZ[1])

    def wrapped(mix: torch.Tensor) -> torch.Tensor:
        y = run(mix).float()
        b, c, length = y.shape
        with torch.inference_mode():
            mag = stft(y.reshape(b * c, length).to(stft.window.device)).abs()  # [B*C, T, F]
            high = _shares(mag[..., top.to(mag.device)].sum(-1).reshape(b, c, -1))
            energy = _shares(mag.pow(2).sum(-1).reshape(b, c, -1))
            shares = _to_samples(torch.cat([high, energy], 1), length, stft.cfg.hop_length).to(y.device)
        return torch.cat([y, shares, mix.to(y.device, torch.float32)[:, None]], 1)

    return wrapped


def _renormalise(g: np.ndarray) -> np.ndarray:
    """Shares ``[n, C, ch]`` after resampling (which can ring slightly below zero) back to sums of one."""
    g = np.maximum(g, 0.0)
    total = g.sum(1, keepdims=True)
    return np.where(total > 1e-9, g / np.maximum(total, 1e-9), 1.0 / g.shape[1])


def combine(y: np.ndarray, x: np.ndarray, n_sources: int, channels: int, residual: bool) -> np.ndarray:
    """The outputs at the input's rate: ``y [n, (3C+1)*ch]`` (``with_shares``'s signals, source-major
    columns, resampled) and the input ``x [n, ch]`` give ``[n, C*ch]`` sources adding up to ``x``
    (``[n, (C+1)*ch]`` with the residual last when ``residual``)."""
    n, c = len(y), n_sources
    cols = y.astype(np.float64).reshape(n, 3 * c + 1, channels)
    x = x.astype(np.float64)
    sources = cols[:, :c] + _renormalise(cols[:, c : 2 * c]) * (x - cols[:, 3 * c])[:, None]
    rest = x - sources.sum(1)
    if residual:
        out = np.concatenate([sources, rest[:, None]], 1)
    else:
        out = sources + _renormalise(cols[:, 2 * c : 3 * c]) * rest[:, None]
    return out.reshape(n, out.shape[1] * channels).astype(np.float32)
