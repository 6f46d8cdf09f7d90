"""Weighted k-means in torch, batched over excerpts, on whatever device the embeddings are on.

The zero-shot probe clusters the embeddings of every test excerpt on its own (``model.clusters``).
One excerpt is small (at most 20 000 bins of D = 20), so a CPU library that fits excerpts one
after another spends most of its time in per-call overhead, and the GPU that computed the
embeddings sits idle meanwhile. Here all excerpts of a batch and all restarts of each are fitted
at once, as one tensor program: ``[B, M, D]`` points (zero-weight padding where an excerpt has
fewer), ``[B, R, K, D]`` centroids.

The algorithm is scikit-learn's ``KMeans(init="k-means++", algorithm="lloyd")`` with
``sample_weight``, so its results are comparable (tests/model/test_kmeans.py checks them against it):

* **seeding**: greedy k-means++ (Arthur & Vassilvitskii 2007, as scikit-learn does it): the first
  centroid is a point drawn with probability proportional to its weight; each further one is the
  best, by the weighted potential it leaves, of ``2 + floor(log k)`` candidates drawn with
  probability proportional to weight x squared distance to the nearest centroid so far;
* **Lloyd iterations** until the labels stop changing or the squared centroid shift is at most
  ``tol`` x the mean per-dimension variance of the points, at most ``max_iter``; a cluster that
  loses all its weight keeps its centroid;
* **restarts**: ``n_init`` seedings per excerpt; the one of least weighted inertia wins.

Every random draw of an excerpt comes from its own CPU ``torch.Generator`` seeded with that
excerpt's seed, so an excerpt gets the same draws whatever batch it is in and whatever device
fits it; on CPU the result is deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from transfersep.model.fast import cpu_parts, run_split

Seed = int | Sequence[int]


def torch_seed(seed: Seed) -> int:
    """A ``torch.Generator`` seed from an int or a tuple of ints (numpy's SeedSequence mixes them)."""
    entropy = [int(s) for s in seed] if isinstance(seed, Sequence) else int(seed)
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0] >> np.uint64(1))


def generator(seed: Seed) -> torch.Generator:
    return torch.Generator().manual_seed(torch_seed(seed))


@dataclass
class KMeansFit:
    centroids: Tensor  # [B, K, D]
    inertia: Tensor  # [B]: sum of weight x squared distance to the nearest centroid
    n_iter: Tensor  # [B]: Lloyd iterations of the winning restart


def _sq_dist(x: Tensor, xx: Tensor, c: Tensor) -> Tensor:
    """Squared distances ``[B, M, J]`` of points ``x [B, M, D]`` (squared norms ``xx [B, M]``) to
    ``c [B, J, D]``; |x - c|^2 = |x|^2 - 2 x.c + |c|^2, clamped at 0 against rounding."""
    # the factor 2 on the small product, not on the points (a pass over [B, M, D] saved)
    return (
        torch.baddbmm(xx.unsqueeze(-1), x, c.transpose(1, 2), alpha=-2.0)
        .add_(c.square().sum(-1).unsqueeze(1))
        .clamp_min_(0.0)
    )


def _draw(cum: Tensor, u: Tensor) -> Tensor:
    """Indices drawn from the unnormalised cumulative weights ``cum [N, M]`` at uniforms ``u [N, J]``.
    ``right=True`` never lands on a zero-weight point while any weight is left."""
    idx = torch.searchsorted(cum, u * cum[:, -1:], right=True)
    return idx.clamp_(max=cum.shape[1] - 1)


def _gather(x: Tensor, idx: Tensor) -> Tensor:
    """Rows ``idx [B, J]`` of ``x [B, M, D]`` -> ``[B, J, D]``."""
    return x.gather(1, idx.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def kmeans_pp(x: Tensor, w: Tensor, k: int, uniforms: Tensor) -> Tensor:
    """Greedy weighted k-means++ seeding of ``R`` runs on each of ``B`` point sets: points ``x [B, M, D]``,
    weights ``w [B, M]``, uniforms ``[B, R, k, trials]`` in [0, 1) -> centroids ``[B, R, k, D]``.
    The runs of a set share its points (their distances come from one product per step)."""
    b, m, d = x.shape
    r, trials = uniforms.shape[1], uniforms.shape[3]
    xx = x.square().sum(-1)
    centers = x.new_empty(b, r, k, d)
    first = _draw(w.cumsum(1), uniforms[:, :, 0, 0])  # [B, R]
    centers[:, :, 0] = _gather(x, first)
    closest = _sq_dist(x, xx, centers[:, :, 0])  # [B, M, R]
    for c in range(1, k):
        cum = (w.unsqueeze(-1) * closest).cumsum(1).transpose(1, 2).contiguous().view(b * r, m)
        cand = _draw(cum, uniforms[:, :, c].reshape(b * r, trials)).view(b, r * trials)
        cand_x = _gather(x, cand)  # [B, R*T, D]
        d_cand = torch.minimum(_sq_dist(x, xx, cand_x).view(b, m, r, trials), closest.unsqueeze(-1))
        best = (w[:, :, None, None] * d_cand).sum(1).argmin(-1)  # [B, R]: the candidate leaving the least potential
        centers[:, :, c] = cand_x.view(b, r, trials, d).gather(2, best[..., None, None].expand(-1, -1, 1, d))[:, :, 0]
        closest = d_cand.gather(-1, best[:, None, :, None].expand(-1, m, -1, 1))[..., 0]
    return centers


def weighted_kmeans(
    x: Tensor,
    w: Tensor,
    k: int,
    seeds: Sequence[Seed],
    n_init: int = 3,
    max_iter: int = 300,
    tol: float = 1e-4,
) -> KMeansFit:
    """Weighted k-means of ``B`` point sets at once.

    Args:
        x: ``[B, M, D]`` points (float; padding rows get weight 0 and should repeat a real point).
        w: ``[B, M]`` non-negative weights; every set needs some positive weight.
        k: clusters per set.
        seeds: one seed per set (an int or a tuple of ints): its k-means++ draws.
        n_init: restarts per set; the one of least inertia is returned.
    """
    b = x.shape[0]
    if len(seeds) != b:
        raise ValueError(f"weighted_kmeans: {len(seeds)} seeds for {b} point sets")
    parts = cpu_parts(x, limit=b)
    if parts > 1:
        # CPU: the sets shared out to the intra-op threads, one thread each. Each op here is small
        # (tens of thousands of elements), and splitting every op across threads costs a barrier per
        # op, which a busy core stalls; whole sets split perfectly and no result changes.
        cut = [b * i // parts for i in range(parts + 1)]
        fits = run_split(
            lambda i, _n: _weighted_kmeans(
                x[cut[i] : cut[i + 1]], w[cut[i] : cut[i + 1]], k, seeds[cut[i] : cut[i + 1]], n_init, max_iter, tol
            ),
            parts,
        )
        return KMeansFit(*(torch.cat([getattr(f, a) for f in fits]) for a in ("centroids", "inertia", "n_iter")))
    return _weighted_kmeans(x, w, k, seeds, n_init, max_iter, tol)


def _weighted_kmeans(
    x: Tensor, w: Tensor, k: int, seeds: Sequence[Seed], n_init: int, max_iter: int, tol: float
) -> KMeansFit:
    b, m, d = x.shape
    x, w = x.float(), w.float()
    trials = 2 + int(math.log(k))
    u = torch.stack([torch.rand(n_init, k, trials, generator=generator(s)) for s in seeds]).to(x.device)
    r = n_init
    centers = kmeans_pp(x, w, k, u)  # [B, R, K, D]
    valid = w > 0
    nv = valid.sum(1).clamp_min(1)
    mean = (x * valid.unsqueeze(-1)).sum(1) / nv.unsqueeze(-1)
    var = (((x - mean.unsqueeze(1)) * valid.unsqueeze(-1)).square().sum(1) / nv.unsqueeze(-1)).mean(-1)
    tol_b = var * tol  # [B]: scikit-learn's tolerance, per set
    n_iter = torch.zeros(b, r, dtype=torch.long, device=x.device)
    _lloyd(x, w, centers, tol_b, max_iter, n_iter)
    xx = x.square().sum(-1)
    dist = _sq_dist(x, xx, centers.view(b, r * k, d)).view(b, m, r, k)
    inertia = (w.unsqueeze(-1) * dist.amin(-1)).sum(1)  # [B, R]
    best = inertia.argmin(1)
    rows = torch.arange(b, device=x.device)
    return KMeansFit(centers.view(b, r, k, d)[rows, best], inertia[rows, best], n_iter[rows, best])


def _argmin_k(rel: Tensor) -> Tensor:
    """``rel.argmin(2)`` of ``[n, R, K, M]`` (ties to the first) as K - 1 passes over contiguous rows:
    torch's argmin over a short middle dimension was 20x slower than this on the CPU."""
    best = rel[:, :, 0]
    labels = torch.zeros(best.shape, dtype=torch.long, device=rel.device)
    for j in range(1, rel.shape[2]):
        better = rel[:, :, j] < best
        labels.masked_fill_(better, j)
        best = torch.where(better, rel[:, :, j], best)
    return labels


def _relocate(sums: Tensor, empty: Tensor, rel: Tensor, labels: Tensor, xw1: Tensor, w: Tensor) -> None:
    """scikit-learn's treatment of clusters left without weight: each takes the point farthest from
    its own centroid (the farthest first), which leaves the cluster it was in. Updates the weighted
    sums and masses ``sums [n, R, K, D+1]`` in place; ``empty [n, R, K]``; ``rel [n, R, K, M]`` the
    squared distances less each point's squared norm; ``labels [n, R, M]``. Rare: a Python loop."""
    x = xw1[..., :-1]
    far = rel.gather(2, labels.unsqueeze(2))[:, :, 0] + x.square().sum(-1).unsqueeze(1)  # [n, R, M]
    far = far.masked_fill(w.unsqueeze(1) <= 0, -float("inf"))  # zero-weight padding is no point
    for i, ri in empty.any(-1).nonzero().tolist():
        clusters = empty[i, ri].nonzero()[:, 0].tolist()
        for j, idx in zip(clusters, far[i, ri].topk(len(clusters)).indices.tolist()):
            point = xw1[i, idx] * w[i, idx]  # its weighted coordinates and its weight
            sums[i, ri, labels[i, ri, idx]] -= point
            sums[i, ri, j] = point


def _lloyd(x: Tensor, w: Tensor, centers: Tensor, tol: Tensor, max_iter: int, n_iter: Tensor) -> None:
    """Lloyd iterations of the runs ``centers [B, R, K, D]`` (updated in place) on points ``x [B, M, D]``.

    A set leaves the batch once all its restarts have converged, so the sets still iterating are
    the only ones computed (a batch otherwise runs as long as its slowest run); a converged restart
    of a set still iterating keeps its centroids. Per iteration, four passes over ``[B, R*K, M]``:
    the distances up to each point's own norm (one ``baddbmm``), the nearest centroid, the weighted
    one-hot assignment, and one ``bmm`` that gives the weighted sums and the masses together.
    """
    b, r, k, d = centers.shape
    # points as columns [B, D, M] (the reductions over K then run along contiguous rows), and [x, 1]
    # as rows so that one product gives the weighted sums and the masses together
    xt = x.transpose(1, 2).contiguous()
    xw1 = torch.cat([x, torch.ones_like(x[..., :1])], -1)
    todo = torch.arange(b, device=x.device)
    sub_xt, sub_xw1, sub_w, sub_c = xt, xw1, w, centers.clone()
    active = torch.ones(b, r, dtype=torch.bool, device=x.device)
    labels = torch.full((b, r, x.shape[1]), -1, dtype=torch.long, device=x.device)
    for _ in range(max_iter):
        n = len(todo)
        c = sub_c.view(n, r * k, d)
        # |x - c|^2 - |x|^2 = |c|^2 - 2 c.x: the same argmin
        rel = torch.baddbmm(c.square().sum(-1, keepdim=True), c, sub_xt, alpha=-2.0).view(n, r, k, -1)
        new_labels = _argmin_k(rel)  # [n, R, M]
        onehot = torch.zeros_like(rel).scatter_(2, new_labels.unsqueeze(2), sub_w[:, None, None].expand(-1, r, 1, -1))
        sums = onehot.view(n, r * k, -1) @ sub_xw1  # [n, R*K, D+1]
        act = active[todo]
        empty = (sums[..., -1] <= 0).view(n, r, k) & act.unsqueeze(-1)
        if bool(empty.any()):
            _relocate(sums.view(n, r, k, d + 1), empty, rel, new_labels, sub_xw1, sub_w)
        mass = sums[..., -1:]
        new = torch.where(mass > 0, sums[..., :-1] / mass.clamp_min(1e-30), c).view(n, r, k, d)
        shift = (new - sub_c).square().sum((-1, -2))  # [n, R]
        same = (new_labels == labels).all(-1)
        sub_c = torch.where(act[..., None, None], new, sub_c)
        n_iter[todo] += act
        labels = new_labels
        act = act & ~(same | (shift <= tol[todo, None]))
        active[todo] = act
        keep = act.any(1)
        if not bool(keep.all()):  # sets whose restarts have all converged leave the batch
            centers[todo[~keep]] = sub_c[~keep]
            todo, sub_c, labels = todo[keep], sub_c[keep], labels[keep]
            if not len(todo):
                return
            sub_xt, sub_xw1, sub_w = xt[todo], xw1[todo], w[todo]
    centers[todo] = sub_c


def assign(embedding: Tensor, centroids: Tensor) -> Tensor:
    """Index of the nearest centroid of every embedding: ``[..., D]`` with centroids ``[K, D]``, or
    ``[B, ..., D]`` with one set per item ``[B, K, D]`` -> ``[...]`` / ``[B, ...]`` (int64)."""
    c = centroids.to(embedding.device, embedding.dtype)
    if c.ndim == 2:
        # |v - c|^2 = |v|^2 - 2 v.c + |c|^2; |v|^2 is the same for every centroid
        return (c.square().sum(-1) - 2.0 * (embedding @ c.T)).argmin(-1)
    b, d = embedding.shape[0], embedding.shape[-1]
    flat = embedding.reshape(b, -1, d)
    # [B, K, N] and K - 1 comparisons: torch's argmin over a last dimension of 3 is slow on the CPU
    rel = torch.baddbmm(c.square().sum(-1).unsqueeze(-1), c, flat.transpose(1, 2), alpha=-2.0)
    near = _argmin_k(rel.unsqueeze(1))[:, 0]
    return near.view(embedding.shape[:-1])
