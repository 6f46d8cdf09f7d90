"""Lloyd's iterations of many k-means restarts at once (``model.kmeans`` seeds them and picks the best).

Each op is one pass over ``[sets, restarts, K, points]``; on a CPU these are memory-bound and small,
so the number of passes and their kind decide the time: comparisons are written as float
arithmetic (``onehot_nearest``), and restarts that have converged leave the batch (``lloyd``).
"""

from __future__ import annotations

import torch
from torch import Tensor


def extended(c: Tensor) -> Tensor:
    """``[-2 c, |c|^2]`` of centroids ``[..., J, D]``: times a point's ``[x, 1]`` it is |x - c|^2 - |x|^2."""
    return torch.cat([c * -2.0, c.square().sum(-1, keepdim=True)], -1)


def nearest(rel: Tensor) -> tuple[Tensor, Tensor]:
    """Index (uint8) and value of the least of ``rel [..., K, M]`` over K, ties to the first.

    Comparisons and arithmetic on contiguous rows: on the CPU torch's argmin over a short dimension,
    ``masked_fill`` and ``where`` with a boolean mask were each 10-40x slower than these."""
    best = rel[..., 0, :]
    small = torch.uint8 if rel.shape[-2] <= 256 else torch.int32
    labels = torch.zeros(best.shape, dtype=small, device=rel.device)
    for j in range(1, rel.shape[-2]):
        cand = rel[..., j, :]
        labels += (cand < best) * (j - labels)  # j where strictly nearer (labels < j: no wrap-around)
        best = torch.minimum(best, cand)
    return labels, best


def onehot_nearest(rel: Tensor) -> tuple[Tensor, Tensor]:
    """The one-hot of the least of ``rel [..., K, M]`` over K (ties to the first), float ``[..., K, M]``,
    and its index as a float ``[..., M]``.

    All float arithmetic: on the CPU a comparison into a boolean, a boolean times a float and
    ``where`` were 5-10x slower a pass than a comparison written as floats and plain products.
    With m_j = [rel_j < min(rel_0..rel_{j-1})], the nearest is the last j with m_j = 1."""
    k = rel.shape[-2]
    if k == 1:
        return torch.ones_like(rel), torch.zeros_like(rel[..., 0, :])
    out = torch.empty_like(rel)
    best = rel[..., 0, :]
    for j in range(1, k):
        torch.lt(rel[..., j, :], best, out=out[..., j, :])
        if j < k - 1:
            best = torch.minimum(best, rel[..., j, :])
    # from the last: u_j = m_j x (no later j claimed the point); what no j >= 1 claimed is cluster 0's
    free = 1.0 - out[..., k - 1, :]
    for j in range(k - 2, 0, -1):
        out[..., j, :].mul_(free)
        free -= out[..., j, :]
    out[..., 0, :] = free
    index = out[..., 1, :].clone()
    for j in range(2, k):
        index.add_(out[..., j, :], alpha=j)
    return out, index


def relocate(sums: Tensor, empty: Tensor, rel: Tensor, labels: Tensor, x1: Tensor, w: Tensor) -> None:
    """scikit-learn's treatment of clusters left without weight: each takes the point farthest from
    its own centroid (the farthest first), which leaves the cluster it was in. Updates the weighted
    sums and masses ``sums [n, R, K, D+1]`` in place; ``empty [n, R, K]``; ``rel [n, R, K, M]`` the
    squared distances less each point's squared norm; ``labels [n, R, M]``; points ``x1 [n, D+1, M]``
    (the last row ones); weights ``w [n, M]``. Rare: a Python loop."""
    labels = labels.long()
    far = rel.gather(2, labels.unsqueeze(2))[:, :, 0] + x1[:, :-1].square().sum(1).unsqueeze(1)  # [n, R, M]
    far = far.masked_fill(w.unsqueeze(1) <= 0, -float("inf"))  # zero-weight padding is no point
    for i, ri in empty.any(-1).nonzero().tolist():
        clusters = empty[i, ri].nonzero()[:, 0].tolist()
        for j, idx in zip(clusters, far[i, ri].topk(len(clusters)).indices.tolist()):
            point = x1[i, :, idx] * w[i, idx]  # its weighted coordinates and its weight
            sums[i, ri, labels[i, ri, idx]] -= point
            sums[i, ri, j] = point


def lloyd(x1: Tensor, w: Tensor, centers: Tensor, tol: Tensor, max_iter: int) -> Tensor:
    """Lloyd iterations of the restarts ``centers [B, R, K, D]`` (updated in place) on points
    ``x1 [B, D+1, M]`` (``[x, 1]`` as columns) with weights ``w [B, M]``; returns the iterations ``[B, R]``.

    Only restarts still iterating are computed: each set keeps its live restarts packed in the first
    ``Rc`` slots (``Rc`` the most any set still has; a set with fewer repeats one of its own, computed
    and discarded), a set leaves once all its restarts have converged, and the points are cut after
    the last weighted one of the sets left. The restarts of a set share one product with its points.
    Per iteration: two batched products, ~3 K passes over ``[n, Rc, M]``, and one small transfer (which
    restarts are live) that decides the packing.
    """
    b, r, k, d = centers.shape
    dev = x1.device
    n_iter = torch.zeros(b, r, dtype=torch.long)
    # how many points of each set count: zero-weight padding sits at the end
    pos = torch.arange(1, w.shape[1] + 1, device=dev)
    length = (pos * (w > 0)).amax(1).clamp_min(1).cpu()
    # the packing, on the CPU: the set of each working row, the restart in each of its slots, whether
    # the slot holds a live restart of its own (not a repeat), and the slot's iterations so far
    sets = torch.arange(b)
    slots = torch.arange(r).repeat(b, 1)
    real = torch.ones(b, r, dtype=torch.bool)
    iters = torch.zeros(b, r, dtype=torch.long)
    mc = int(length.max())
    sub_x, sub_w, sub_tol = x1[..., :mc], w[:, :mc], tol
    c = centers.clone()
    labels = torch.full((b, r, mc), -1.0, device=dev)  # no label: the first step changes all
    live, all_live = real.to(dev), True

    def store() -> None:
        """The centroids and iterations of the working restarts (a finished one's are final)."""
        rows, cols = sets.unsqueeze(1).expand_as(slots)[real], slots[real]
        centers[rows.to(dev), cols.to(dev)] = c[live]
        n_iter[rows, cols] = iters[real]

    for _ in range(max_iter):
        n, rc = c.shape[:2]
        rel = torch.bmm(extended(c.view(n, rc * k, d)), sub_x).view(n, rc, k, -1)
        onehot, new_labels = onehot_nearest(rel)
        onehot.mul_(sub_w[:, None, None])  # the weighted one-hot
        sums = torch.bmm(onehot.view(n, rc * k, -1), sub_x.transpose(1, 2)).view(n, rc, k, d + 1)
        same = torch.sub(new_labels, labels).abs_().amax(-1) == 0
        labels = new_labels
        empty = sums[..., -1] <= 0  # a repeat slot relocates as its original does: harmless
        if bool(empty.any()):  # rare (a sync on a GPU)
            relocate(sums, empty, rel, new_labels.long(), sub_x, sub_w)
        mass = sums[..., -1:]
        new = torch.where(mass > 0, sums[..., :-1] / mass.clamp_min(1e-30), c)
        done = same | ((new - c).square().sum((-1, -2)) <= sub_tol.unsqueeze(1))  # [n, Rc]
        c = new if all_live else torch.where(live[..., None, None], new, c)
        iters += real
        # the one transfer of the iteration: which restarts go on
        still = real & ~done.cpu()
        if torch.equal(still, real):
            continue
        # a restart finished: its centroids are final; pack the live ones again
        store()
        count = still.sum(1)
        keep = count > 0
        if not bool(keep.any()):
            return n_iter.to(dev)
        rc_new = int(count.max())
        # per kept set, its live slots first, then repeats of its first live one (computed, discarded)
        order = torch.sort((~still[keep]).to(torch.uint8), dim=1, stable=True).indices[:, :rc_new]
        q = torch.arange(rc_new)
        pick = torch.where(q < count[keep].unsqueeze(1), order, order[:, :1])
        real = q < count[keep].unsqueeze(1)
        rows = keep.nonzero()[:, 0]
        slots, sets, iters = slots[rows.unsqueeze(1), pick], sets[rows], iters[rows.unsqueeze(1), pick]
        rows_d, pick_d = rows.to(dev), pick.to(dev)
        c = c[rows_d.unsqueeze(1), pick_d]
        labels = labels[rows_d.unsqueeze(1), pick_d]
        if len(rows) < n:
            mc = int(length[sets].max())
            idx = sets.to(dev)
            sub_x, sub_w, sub_tol, labels = x1[idx, :, :mc], w[idx, :mc], tol[idx], labels[..., :mc]
        live, all_live = real.to(dev), bool(real.all())
    store()
    return n_iter.to(dev)
