"""Independent references the tests check the tool against: the naive formulas, written from the
papers with explicit matrices in float64 and nothing taken from the package."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import soundfile as sf
import torch
from scipy.signal import correlate, resample_poly


def naive_dc(v: torch.Tensor, labels: torch.Tensor, n_sources: int, w: torch.Tensor | None) -> torch.Tensor:
    """The deep-clustering loss ||W^1/2 (VV^T - YY^T) W^1/2||_F^2 / (sum w)^2 with explicit TF x TF
    matrices, per example, averaged over the batch (Hershey et al. 2016; magnitude weights as in nussl).

    Args:
        v: ``[B, T, F, D]`` embeddings.
        labels: ``[B, T, F]`` the dominant source of each bin.
        w: ``[B, T, F]`` bin weights, or None for ones.
    """
    out = []
    for b in range(v.shape[0]):
        vb = v[b].reshape(-1, v.shape[-1]).double()
        yb = torch.nn.functional.one_hot(labels[b].reshape(-1), n_sources).double()
        wb = torch.ones(vb.shape[0], dtype=torch.float64) if w is None else w[b].reshape(-1).double()
        s = wb.sqrt()
        out.append(((s[:, None] * (vb @ vb.T - yb @ yb.T) * s[None, :]) ** 2).sum() / wb.sum() ** 2)
    return torch.stack(out).mean()


def naive_sisdr(est: np.ndarray, ref: np.ndarray) -> float:
    """SI-SDR, Le Roux et al. 2019, eq. (3), on mean-removed signals, in float64."""
    est = est.astype(np.float64) - est.mean()
    ref = ref.astype(np.float64) - ref.mean()
    target = (est @ ref) / (ref @ ref) * ref
    err = est - target
    return 10 * np.log10((target @ target) / (err @ err))


def reference_16k(paths: list[str]) -> np.ndarray:
    """Sum of files as 16 kHz mono by an independent route (soundfile + scipy polyphase)."""
    parts = []
    for p in paths:
        x, sr = sf.read(p, dtype="float64", always_2d=True)
        ratio = Fraction(16000, sr)
        parts.append(resample_poly(x.mean(axis=1), ratio.numerator, ratio.denominator))
    n = max(len(p) for p in parts)
    return sum(np.pad(p, (0, n - len(p))) for p in parts)


def best_match(excerpt: np.ndarray, reference: np.ndarray) -> tuple[int, float]:
    """(lag, normalised correlation) of ``excerpt`` inside ``reference`` (lag >= 0)."""
    ref = np.pad(reference, (0, max(0, len(excerpt) - len(reference) + 1)))
    c = correlate(ref, excerpt, mode="valid")
    lag = int(np.argmax(c))
    seg = ref[lag : lag + len(excerpt)]
    denom = np.linalg.norm(seg) * np.linalg.norm(excerpt) + 1e-12
    return lag, float(c[lag] / denom)
