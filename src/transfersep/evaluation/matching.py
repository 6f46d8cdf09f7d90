"""Scoring unlabelled estimates: each excerpt's estimates matched to its references by the
assignment that maximises the summed SI-SDR (``scipy.optimize.linear_sum_assignment``), as
permutation-free separators (the zero-shot probe's clusters) are scored."""

from __future__ import annotations

import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from transfersep.evaluation.sisdr import SILENCE_DB, silent_reference, sisdr


def match_to_references(est: Tensor, ref: Tensor, silence_db: float | None = None) -> Tensor:
    """Reorder unlabelled estimates to their best-matching references, per excerpt.

    Args:
        est: ``[B, K, N]`` estimates in arbitrary order (K >= C).
        ref: ``[B, C, N]`` references.

    Returns:
        ``[B, C, N]``: ``out[b, c]`` is the estimate assigned to reference ``c`` by the assignment
        that maximises the summed SI-SDR over the non-silent references of excerpt ``b``.
    """
    b, k, n = est.shape
    c = ref.shape[1]
    if k < c:
        raise ValueError(f"{k} estimates cannot cover {c} references")
    e64, r64 = est.detach().double().cpu(), ref.detach().double().cpu()
    # the project's SI-SDR: an empty cluster scores the floor, below any estimate that holds something
    m = sisdr(e64[:, :, None, :].expand(b, k, c, n), r64[:, None, :, :].expand(b, k, c, n))
    silent = silent_reference(r64, SILENCE_DB if silence_db is None else silence_db)  # [B, C]
    m = torch.nan_to_num(m, nan=-1e3, posinf=1e3, neginf=-1e3).masked_fill(silent[:, None, :], 0.0)
    out = torch.empty(b, c, n, dtype=est.dtype, device=est.device)
    for i in range(b):
        rows, cols = linear_sum_assignment(m[i].numpy(), maximize=True)
        out[i, torch.as_tensor(cols)] = est[i, torch.as_tensor(rows)]
    return out
