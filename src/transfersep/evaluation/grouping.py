"""Scoring a model with more outputs than the downstream set has sources: each excerpt's M outputs
grouped onto its C references by the assignment that maximises the mean SI-SDR of the C sums (the
zero-shot probe of a MixIT pretraining, whose outputs are no particular instruments).

Each output goes to exactly one reference (C^M assignments; a reference may get none, and then its
estimate is silence and scores the floor). All assignments are scored at once: SI-SDR of a sum
``s_hat = sum_m A[m] e_m`` against ``s`` (both mean-removed) is ``10 log10(d^2 / (|s|^2 |s_hat|^2 - d^2))``
with ``d = <s_hat, s>``, and ``d`` and ``|s_hat|^2`` are linear and quadratic forms in the
assignment over the outputs' inner products with the references and with each other.
"""

from __future__ import annotations

import torch
from torch import Tensor

from transfersep.evaluation.sisdr import SILENCE_DB, SISDR_FLOOR_DB, silent_reference
from transfersep.model.mixit import assignment_matrix

MAX_ASSIGNMENTS = 2**20  # C^M beyond this is a model/dataset pair the exhaustive search cannot serve


def assignment_sisdr(est: Tensor, ref: Tensor) -> tuple[Tensor, Tensor]:
    """SI-SDR in dB (float64, clipped below at ``SISDR_FLOOR_DB``) of every assignment's C sums.

    Args:
        est: ``[B, M, N]`` outputs.
        ref: ``[B, C, N]`` references.

    Returns:
        ``(scores [B, C^M, C], assignments [C^M, C, M])``; a sum that is silent (no output, or
        outputs that cancel) scores the floor, as ``evaluation.sisdr`` scores a silent estimate.
    """
    c, m = ref.shape[1], est.shape[1]
    if c**m > MAX_ASSIGNMENTS:
        raise ValueError(
            f"{m} outputs onto {c} references is {c**m} assignments per excerpt, more than {MAX_ASSIGNMENTS}; "
            "probe a model with fewer outputs"
        )
    dev = est.device if est.device.type != "mps" else torch.device("cpu")  # MPS has no float64
    e = est.to(dev, torch.float64)
    s = ref.to(dev, torch.float64)
    e = e - e.mean(-1, keepdim=True)
    s = s - s.mean(-1, keepdim=True)
    a = assignment_matrix(m, c, torch.float64, dev)  # [K, C, M]
    gram = torch.einsum("bmn,bpn->bmp", e, e)  # [B, M, M]
    cross = torch.einsum("bcn,bmn->bcm", s, e)  # [B, C, M]
    ref_pow = s.pow(2).sum(-1)[:, None, :]  # [B, 1, C]
    dot = torch.einsum("kcm,bcm->bkc", a, cross)  # [B, K, C]
    est_pow = torch.einsum("kcm,bmp,kcp->bkc", a, gram, a)  # [B, K, C]
    target = dot.pow(2)
    # |s|^2 |s_hat|^2 - d^2 >= 0 (Cauchy-Schwarz); rounding can take a near-exact sum just below it
    noise = (ref_pow * est_pow - target).clamp_min(1e-30 * ref_pow * est_pow)
    val = 10.0 * torch.log10(target / noise)
    val = torch.where(est_pow > 0, val, -torch.inf)  # a silent sum holds none of the source
    return torch.nan_to_num(val, nan=SISDR_FLOOR_DB).clamp(min=SISDR_FLOOR_DB), a


def group_to_references(est: Tensor, ref: Tensor, silence_db: float | None = None) -> Tensor:
    """Sum each excerpt's outputs onto its references by the best assignment.

    Args:
        est: ``[B, M, N]`` outputs in no particular order or meaning.
        ref: ``[B, C, N]`` references.
        silence_db: the silent-reference threshold (default ``SILENCE_DB``); silent references
            do not steer the choice (they are left out of the mean, as the evaluation leaves them out).

    Returns:
        ``[B, C, N]`` (``est``'s dtype and device): ``out[b, c]`` is the sum of the outputs that the
        assignment maximising the mean SI-SDR over excerpt ``b``'s audible references gives to ``c``.
    """
    if est.ndim != 3 or ref.ndim != 3 or est.shape[::2] != ref.shape[::2]:
        raise ValueError(
            f"expected outputs [B, M, N] and references [B, C, N], got {tuple(est.shape)}, {tuple(ref.shape)}"
        )
    # the evaluation calls this under bf16 autocast on a GPU, where einsum would round the sums to bf16
    with torch.autocast(est.device.type, enabled=False):
        scores, a = assignment_sisdr(est.detach(), ref.detach())
        silent = silent_reference(ref.detach(), SILENCE_DB if silence_db is None else silence_db).to(scores.device)
        audible = (~silent).to(scores.dtype)[:, None, :]  # [B, 1, C]
        mean = (scores * audible).sum(-1) / audible.sum(-1).clamp_min(1.0)  # [B, K]
        best = mean.argmax(-1)  # ties (all references silent): the first assignment
        chosen = a[best].to(est.device, est.dtype)  # [B, C, M]
        return torch.einsum("bcm,bmn->bcn", chosen, est)
