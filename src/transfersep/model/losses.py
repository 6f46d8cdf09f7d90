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

from transfersep.model.fast import cpu_parts, run_split


def ideal_assignment(source_mag: torch.Tensor) -> torch.Tensor:
    """Index of the dominant source of every bin. [B, C, T, F] -> long [B, T, F].

    The source count is the tensor's C dimension, fixed by the dataset, so a source that is silent
    in a batch still owns a column of Y (it just owns no bins). Ties go to the lowest index, as
    ``torch.argmax`` does (an all-silent bin belongs to source 0).

    Computed as a running maximum over the C slices (each a contiguous [B, T, F] block) rather than
    ``argmax(dim=1)``: PyTorch's CPU argmax over an outer dimension is about 10x slower (4.6 s of
    a 24 x 10 s step here).
    """
    c = source_mag.shape[1]
    if c == 1:
        return source_mag.argmax(dim=1)
    best = source_mag[:, 0]
    labels = torch.zeros(best.shape, dtype=torch.long, device=source_mag.device)
    for k in range(1, c):
        s = source_mag[:, k]
        labels.masked_fill_(s > best, k)  # strict: the first maximum wins, as argmax
        best = torch.maximum(best, s) if k < c - 1 else best
    return labels


def magnitude_weights(mix_mag: torch.Tensor) -> torch.Tensor:
    """W of the DC loss: the mixture magnitude of each bin, [B, T, F] (as nussl's recipe).

    Loud bins count more, near-silent bins (whose label is arbitrary) barely count.
    The loss divides by (sum W)^2, so the scale of W does not matter.
    """
    return mix_mag


def deep_clustering_loss_reference(
    embedding: torch.Tensor,
    labels: torch.Tensor,
    n_sources: int,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """The plain low-rank DC loss, differentiated by autograd (same contract as ``deep_clustering_loss``).

    Kept as the reference of the fast path (tests, ``transfersep.bench``): it materialises W V,
    the one-hot Y and, in the backward, several [B, TF, D] gradients.
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


def _tasks(v: torch.Tensor) -> list[tuple[int, slice]]:
    """(example, bins) chunks: on CPU ~16k bins, a [rows, 24] fp32 block that stays in cache; on
    GPUs whole examples."""
    b, n = v.shape[:2]
    step = 16384 if v.device.type == "cpu" else max(n, 1)
    return [(i, slice(s, s + step)) for i in range(b) for s in range(0, n, step)]


def _weighted_block(
    v: torch.Tensor, labels: torch.Tensor, w: torch.Tensor | None, n_sources: int, out: torch.Tensor
) -> torch.Tensor:
    """out[:n] = [W V | W Y | 0] of one chunk (fp32): v [n, D], labels long [n], w [n] | None.

    The zero columns pad the width to a multiple of 8, which MKL's small-matrix kernels run
    about 1.5x faster than the bare D + C = 23 of the paper's size.
    """
    n, d = v.shape
    blk = out[:n]
    if w is None:
        blk[:, :d] = v
        blk[:, d:].zero_().scatter_(1, labels.unsqueeze(1), 1.0)
    else:
        torch.mul(v, w.unsqueeze(1), out=blk[:, :d])
        blk[:, d:].zero_().scatter_(1, labels.unsqueeze(1), w.unsqueeze(1).to(blk.dtype))
    return blk


class _DeepClusteringLoss(torch.autograd.Function):
    """Low-rank DC loss with a hand-written backward, streamed over TF in cache-sized chunks.

    Per example, with U = [W V | W Y] (TF x (D + C)), one product V^T U = [A | Bm] gives
    A = V^T W V and Bm = V^T W Y; diag(Y^T W Y) is the per-source sum of w (the column sums of
    W Y) and n = sum(w) its total. Then
        L = (||A||^2 - 2 ||Bm||^2 + ||Y^T W Y||^2) / n^2,
        dL/dV = (4 / n^2) W (V A - Y Bm^T) = (4 / n^2) U [A ; -Bm^T],
    so the forward reads V once, keeps nothing of size TF x D but V itself, and the backward
    reads V once more and writes the gradient once. Accumulation is fp32 whatever V's dtype.
    On CPU the chunks are shared out to the intra-op threads (``model.fast.run_split``).
    """

    @staticmethod
    def forward(ctx, v, labels, weights, n_sources):  # v [B, N, D] contiguous, labels [B, N], weights [B, N] | None
        b, n, d = v.shape
        width = -(-(d + n_sources) // 8) * 8
        tasks = _tasks(v)

        def part(k: int, parts: int) -> tuple[torch.Tensor, torch.Tensor]:
            gram = torch.zeros(b, d, width, dtype=torch.float32, device=v.device)  # [A | Bm | 0]
            yty = torch.zeros(b, n_sources, dtype=torch.float32, device=v.device)
            buf = torch.empty(min(tasks[0][1].stop, n), width, dtype=torch.float32, device=v.device)
            for i, s in tasks[k::parts]:
                v_c, lab_c = v[i, s].float(), labels[i, s]
                w_c = None if weights is None else weights[i, s].float()
                blk = _weighted_block(v_c, lab_c, w_c, n_sources, buf)
                gram[i].addmm_(v_c.T, blk)
                yty[i] += blk[:, d : d + n_sources].sum(0)  # per-source sum of w
            return gram, yty

        with torch.autocast(v.device.type, enabled=False):
            results = run_split(part, cpu_parts(v, len(tasks)))
        gram = torch.stack([r[0] for r in results]).sum(0) if len(results) > 1 else results[0][0]
        yty = torch.stack([r[1] for r in results]).sum(0) if len(results) > 1 else results[0][1]
        a, bm = gram[:, :, :d], gram[:, :, d : d + n_sources]
        norm = yty.sum(1).square().clamp_min(torch.finfo(torch.float32).tiny)
        per_item = (a.square().sum((1, 2)) - 2 * bm.square().sum((1, 2)) + yty.square().sum(1)) / norm
        ctx.save_for_backward(v, labels, weights, gram, norm)
        ctx.n_sources = n_sources
        return per_item.mean()

    @staticmethod
    def backward(ctx, grad_out):
        v, labels, weights, gram, norm = ctx.saved_tensors
        b, n, d = v.shape
        c, width, tasks = ctx.n_sources, gram.shape[2], _tasks(v)
        # M = [A ; -Bm^T ; 0] * 4 g / (B n^2), so that dL/dV = U M chunk by chunk
        m = torch.zeros(b, width, d, dtype=torch.float32, device=v.device)
        m[:, :d] = gram[:, :, :d]
        m[:, d : d + c] = -gram[:, :, d : d + c].transpose(1, 2)
        m *= (4.0 * grad_out.float() / b / norm).view(b, 1, 1)
        grad = torch.empty_like(v)
        direct = v.dtype == torch.float32  # write each chunk's product straight into the gradient

        def part(k: int, parts: int) -> None:
            buf = torch.empty(min(tasks[0][1].stop, n), width, dtype=torch.float32, device=v.device)
            for i, s in tasks[k::parts]:
                v_c = v[i, s].float()
                w_c = None if weights is None else weights[i, s].float()
                blk = _weighted_block(v_c, labels[i, s], w_c, c, buf)
                if direct:
                    torch.mm(blk, m[i], out=grad[i, s])
                else:
                    grad[i, s] = blk @ m[i]

        with torch.autocast(v.device.type, enabled=False):
            run_split(part, cpu_parts(v, len(tasks)))
        return grad, None, None, None


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
    Y'^T Y' is diagonal with entries sum of w over the bins of each source. The value and the
    gradient w.r.t. the embedding are those of ``deep_clustering_loss_reference`` (up to rounding:
    fp32 accumulation in chunks); a weight tensor that requires grad falls back to it.

    Args:
        embedding: [B, T, F, D] (or [B, TF, D]); fp32, or bf16/fp16 (accumulated in fp32).
        labels: long [B, T, F] (or [B, TF]) dominant-source index in [0, C), from ``ideal_assignment``.
        n_sources: C, the dataset's source count (not inferred from the labels).
        weights: [B, T, F] (or [B, TF]) non-negative bin weights; None means all ones.
    Returns:
        scalar loss (fp32, or the embedding's dtype if that is fp64).
    """
    if embedding.dtype == torch.float64 or (weights is not None and weights.requires_grad):
        return deep_clustering_loss_reference(embedding, labels, n_sources, weights)
    b, d = embedding.shape[0], embedding.shape[-1]
    v = embedding.reshape(b, -1, d).contiguous()
    lab = labels.reshape(b, -1).long().contiguous()
    if lab.shape[1] != v.shape[1]:
        raise ValueError(f"labels {tuple(labels.shape)} do not match the embedding {tuple(embedding.shape)}")
    if lab.numel() == 0:
        raise ValueError(f"DC loss of an empty embedding {tuple(embedding.shape)}")
    lo, hi = torch.aminmax(lab)  # one pass; out-of-range labels would land in the padding columns
    if lo < 0 or hi >= n_sources:
        raise ValueError(f"DC loss: labels span [{int(lo)}, {int(hi)}], but n_sources is {n_sources}")
    w = None if weights is None else weights.reshape(b, -1).detach().contiguous()
    return _DeepClusteringLoss.apply(v, lab, w, n_sources)


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
