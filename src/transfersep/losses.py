"""Losses of the study: deep clustering, mask inference and their chimera combination.

Shapes (B batch, T frames, F bins, D embedding size, C sources):
  embedding  [B, T, F, D]  unit-norm rows
  masks      [B, C, T, F]  in [0, 1]
  mix_mag    [B, T, F]     |X|
  source_mag [B, C, T, F]  |S_c|
"""

from __future__ import annotations

import torch
import torch.nn.functional as nnf


def ideal_assignment(source_mag: torch.Tensor) -> torch.Tensor:
    """Index of the dominant source of every bin. [B, C, T, F] -> long [B, T, F].

    The source count is the tensor's C dimension, fixed by the dataset, so a source that is silent
    in a batch still owns a column of Y (it just owns no bins).
    """
    return source_mag.argmax(dim=1)


def magnitude_weights(mix_mag: torch.Tensor) -> torch.Tensor:
    """W of the DC loss: the mixture magnitude of each bin, [B, T, F] (as nussl's recipe).

    Loud bins count more, near-silent bins (whose label is arbitrary) barely count.
    The loss divides by (sum W)^2, so the scale of W does not matter.
    """
    return mix_mag


def deep_clustering_loss(
    embedding: torch.Tensor,
    labels: torch.Tensor,
    n_sources: int,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Weighted deep-clustering loss (Hershey et al. 2016, eq. 1 of Bugler et al. 2020).

    L_b = ||W^1/2 (V V^T - Y Y^T) W^1/2||_F^2 / (sum_tf w)^2, averaged over the batch, with
    V the embeddings [TF, D], Y the one-hot ideal binary assignment [TF, C] and W = diag(w).

    Computed in the low-rank form  ||V'^T V'||^2 - 2 ||V'^T Y'||^2 + ||Y'^T Y'||^2  with
    V' = W^1/2 V, Y' = W^1/2 Y, so memory grows with TF x D, never (TF)^2. Because Y is one-hot,
    Y'^T Y' is diagonal with entries sum of w over the bins of each source.

    Args:
        embedding: [B, T, F, D] (or [B, TF, D]).
        labels: long [B, T, F] (or [B, TF]) dominant-source index, from ``ideal_assignment``.
        n_sources: C, the dataset's source count (not inferred from the labels).
        weights: [B, T, F] (or [B, TF]) non-negative bin weights; None means all ones.
    Returns:
        scalar loss.
    """
    b, d = embedding.shape[0], embedding.shape[-1]
    v = embedding.reshape(b, -1, d)
    y = nnf.one_hot(labels.reshape(b, -1), n_sources).to(v.dtype)  # [B, TF, C]
    if weights is None:
        w = torch.ones(v.shape[:2], dtype=v.dtype, device=v.device)
    else:
        w = weights.reshape(b, -1).to(v.dtype)
    vw = v * w.unsqueeze(-1)  # W V: one factor of W^1/2 from each side
    vtv = torch.bmm(v.transpose(1, 2), vw)  # [B, D, D]  V^T W V
    vty = torch.bmm(vw.transpose(1, 2), y)  # [B, D, C]  V^T W Y
    yty = torch.bmm(y.transpose(1, 2), w.unsqueeze(-1)).squeeze(-1)  # [B, C] diag of Y^T W Y
    loss = vtv.pow(2).sum((1, 2)) - 2 * vty.pow(2).sum((1, 2)) + yty.pow(2).sum(1)
    norm = w.sum(1).pow(2).clamp_min(torch.finfo(v.dtype).tiny)
    return (loss / norm).mean()


def mask_inference_loss(masks: torch.Tensor, mix_mag: torch.Tensor, source_mag: torch.Tensor) -> torch.Tensor:
    """Magnitude spectrum approximation, L1 (eq. 2): (1/N) || |M o X| - |S| ||_1.

    N counts every (batch, source, frame, bin) element, i.e. the mean absolute error (nussl's L1).

    Args:
        masks: [B, C, T, F] in [0, 1].
        mix_mag: [B, T, F].
        source_mag: [B, C, T, F].
    """
    return (masks * mix_mag.unsqueeze(1) - source_mag).abs().mean()


def chimera_loss(dc: torch.Tensor, mi: torch.Tensor, alpha: float = 0.01) -> torch.Tensor:
    """alpha * DC + (1 - alpha) * MI (eq. 3; alpha = .01 as in Luo et al. 2017)."""
    return alpha * dc + (1.0 - alpha) * mi
