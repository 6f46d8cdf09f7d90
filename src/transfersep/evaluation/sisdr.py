"""SI-SDR of separated sources, with the project's rule for silent references.

SI-SDR (Le Roux et al. 2019, the paper's ref. [21]) is computed by torchmetrics'
``scale_invariant_signal_distortion_ratio`` in float64 on mean-removed signals (the metric of
``zero_mean=True``; the means are removed here once, shared with the silence test).

Silent-reference rule
---------------------
SI-SDR is undefined when the reference has no energy (every estimate is "perfect" up to scale, the
ratio is 0/0) and meaningless when the reference is near-silent: a small stem in a 10-second
excerpt would dominate the averages with huge positive or negative values. So:

* a reference is **silent** when the RMS of its mean-removed waveform is below
  ``SILENCE_DB`` = -60 dBFS (full scale = 1.0, i.e. RMS < 1e-3); the mean is removed first because
  ``zero_mean=True`` scores the mean-removed signal (a constant offset is silence too);
* a silent (excerpt, source) pair gets SI-SDR = NaN and ``silent_reference = True`` in the
  per-excerpt table, and is **excluded** from every average and test (counted as ``n_excluded``);
* an excerpt whose sources are all silent drops out of the per-excerpt means (cannot happen with
  a valid mixture: mix == sum(sources) is then silent as well).

Near-silent *estimates*: SI-SDR does not depend on the scale of either signal, so both are
scaled to unit RMS (after mean removal) before torchmetrics sees them; its eps guard then never
distorts a quiet but non-zero estimate, which gets its exact SI-SDR however small it is.

Floor: every SI-SDR is clipped below at ``SISDR_FLOOR_DB`` (−60 dB), so one hopeless excerpt
cannot drag a mean without bound (an estimate orthogonal to its reference is −∞; random noise of a
10-s excerpt already scores about −52 dB). A **silent estimate** (all zero after mean removal: an
empty cluster of the zero-shot probe, a mask that is zero everywhere) of a non-silent reference
contains none of it: its SI-SDR is −∞ and it scores the floor — not the 0 dB that torchmetrics' eps
would give the 0/0, which beats every genuine estimate worse than 0 dB.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor
from torchmetrics.functional.audio import scale_invariant_signal_distortion_ratio

SILENCE_DB = -60.0
SISDR_FLOOR_DB = -60.0


def _centred(x: Tensor) -> tuple[Tensor, Tensor]:
    """float64 copy of ``x [..., N]`` with its mean removed, and its RMS ``[..., 1]``."""
    # MPS has no float64; the metric is cheap enough to move to the CPU there.
    x = (x.cpu() if x.device.type == "mps" else x).to(torch.float64, copy=True)
    x.sub_(x.mean(dim=-1, keepdim=True))
    rms = torch.linalg.vector_norm(x, dim=-1, keepdim=True) / math.sqrt(x.shape[-1])
    return x, rms


def rms_db(x: Tensor) -> Tensor:
    """RMS level in dBFS (full scale 1.0) of the mean-removed signal: ``[..., N] -> [...]``.

    Zero signals give ``-inf``.
    """
    return 20.0 * torch.log10(_centred(x)[1][..., 0])


def silent_reference(ref: Tensor, silence_db: float = SILENCE_DB) -> Tensor:
    """Bool ``[...]``: True where the reference ``[..., N]`` is silent (RMS < ``silence_db`` dBFS)."""
    return rms_db(ref) < silence_db


def _sisdr(est: Tensor, ref: Tensor) -> tuple[Tensor, Tensor]:
    """(SI-SDR [...] in dB, reference RMS [...]) of ``est, ref [..., N]``, both in float64."""
    if est.shape != ref.shape:
        raise ValueError(
            f"SI-SDR needs estimates and references of one shape, got {tuple(est.shape)} and {tuple(ref.shape)}"
        )
    est, est_rms = _centred(est)
    ref, ref_rms = _centred(ref.to(est.device))
    # unit RMS (zeros stay zeros): SI-SDR is scale-invariant, and eps stays negligible at any level
    est.div_(torch.where(est_rms > 0, est_rms, 1.0))
    ref_unit = ref.div_(torch.where(ref_rms > 0, ref_rms, 1.0))
    # the means are already removed, which is all zero_mean=True would do (saves 4 passes)
    val = scale_invariant_signal_distortion_ratio(est, ref_unit, zero_mean=False)
    val = torch.where(est_rms[..., 0] > 0, val, -math.inf)  # a silent estimate holds none of the source
    return val.clamp(min=SISDR_FLOOR_DB), ref_rms[..., 0]


def sisdr(est: Tensor, ref: Tensor) -> Tensor:
    """SI-SDR in dB (float64) with zero-mean signals, clipped at ``SISDR_FLOOR_DB`` (a silent
    estimate scores the floor), no silent-reference rule: ``est, ref [..., N] -> [...]``."""
    return _sisdr(est, ref)[0]


def batch_sisdr(est: Tensor, ref: Tensor, silence_db: float = SILENCE_DB) -> tuple[Tensor, Tensor]:
    """SI-SDR of every (excerpt, source) with the silent-reference rule.

    Args:
        est: estimates ``[B, C, N]``.
        ref: references ``[B, C, N]`` (any device; moved to ``est``'s).
        silence_db: threshold of the silent-reference rule (dBFS RMS).

    Returns:
        ``(scores, silent)``: float64 ``[B, C]`` in dB with NaN where ``silent``, and bool ``[B, C]``,
        both on the CPU.
    """
    if est.ndim != 3 or est.shape != ref.shape:
        raise ValueError(
            f"expected estimates and references of shape [B, C, N], got {tuple(est.shape)} and {tuple(ref.shape)}"
        )
    scores, ref_rms = _sisdr(est, ref)
    scores, ref_rms = scores.cpu(), ref_rms.cpu()
    silent = 20.0 * torch.log10(ref_rms) < silence_db
    scores = torch.where(silent, torch.full_like(scores, float("nan")), scores)
    return scores, silent


def excerpt_means(scores: np.ndarray, silent: np.ndarray | None = None) -> np.ndarray:
    """Per-excerpt mean over the non-silent sources: ``[E, C] -> [E]`` (NaN if every source is silent).

    ``silent`` (bool ``[E, C]``) marks the excluded pairs; without it, NaN scores are the silent ones.

    This is the number the paired tests compare and the one "overall" SI-SDR averages: one value per
    excerpt, so two models are paired excerpt by excerpt and each excerpt weighs the same however
    many of its sources are silent.
    """
    scores = np.asarray(scores, dtype=np.float64)
    valid = ~np.isnan(scores) if silent is None else ~np.asarray(silent, dtype=bool)
    n = valid.sum(axis=1)
    total = np.where(valid, scores, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / np.maximum(n, 1), np.nan)


def summarize(values: np.ndarray) -> dict:
    """mean / median / std (sample, ddof=1) / n over the non-NaN values; None where undefined."""
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    n = int(v.size)
    return {
        "mean": float(v.mean()) if n else None,
        "median": float(np.median(v)) if n else None,
        "std": float(v.std(ddof=1)) if n > 1 else None,
        "n": n,
    }
