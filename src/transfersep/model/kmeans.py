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
    return (xx.unsqueeze(-1) - 2.0 * x @ c.transpose(1, 2) + c.square().sum(-1).unsqueeze(1)).clamp_min_(0.0)


def _draw(cum: Tensor, u: Tensor) -> Tensor:
    """Indices drawn from the unnormalised cumulative weights ``cum [N, M]`` at uniforms ``u [N, J]``.
    ``right=True`` never lands on a zero-weight point while any weight is left."""
    idx = torch.searchsorted(cum, u * cum[:, -1:], right=True)
    return idx.clamp_(max=cum.shape[1] - 1)


def _gather(x: Tensor, idx: Tensor) -> Tensor:
    """Rows ``idx [N, J]`` of ``x [N, M, D]`` -> ``[N, J, D]``."""
    return x.gather(1, idx.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def kmeans_pp(x: Tensor, w: Tensor, k: int, uniforms: Tensor) -> Tensor:
    """Greedy weighted k-means++ seeding of ``N`` independent runs: points ``x [N, M, D]`` with weights
    ``w [N, M]`` and uniforms ``[N, k, trials]`` in [0, 1) -> centroids ``[N, k, D]``."""
    n, _, d = x.shape
    rows = torch.arange(n, device=x.device)
    xx = x.square().sum(-1)
    centers = x.new_empty(n, k, d)
    first = _draw(w.cumsum(1), uniforms[:, 0, :1])
    centers[:, 0] = _gather(x, first)[:, 0]
    closest = _sq_dist(x, xx, centers[:, :1])[..., 0]  # [N, M]
    for c in range(1, k):
        cand = _draw((w * closest).cumsum(1), uniforms[:, c])  # [N, trials]
        cand_x = _gather(x, cand)  # [N, trials, D]
        d_cand = torch.minimum(_sq_dist(x, xx, cand_x), closest.unsqueeze(-1))  # [N, M, trials]
        best = (w.unsqueeze(-1) * d_cand).sum(1).argmin(-1)  # the candidate leaving the least potential
        centers[:, c] = cand_x[rows, best]
        closest = d_cand[rows, :, best]
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
    b, m, d = x.shape
    if len(seeds) != b:
        raise ValueError(f"weighted_kmeans: {len(seeds)} seeds for {b} point sets")
    x, w = x.float(), w.float()
    trials = 2 + int(math.log(k))
    u = torch.stack([torch.rand(n_init, k, trials, generator=generator(s)) for s in seeds]).to(x.device)
    r = n_init
    # the restarts of a set share its points: [B, R, ...] runs flattened to [B*R, ...] for the seeding
    xr = x.unsqueeze(1).expand(b, r, m, d).reshape(b * r, m, d)
    wr = w.unsqueeze(1).expand(b, r, m).reshape(b * r, m)
    centers = kmeans_pp(xr, wr, k, u.reshape(b * r, k, trials)).view(b, r * k, d)
    valid = w > 0
    nv = valid.sum(1).clamp_min(1)
    mean = (x * valid.unsqueeze(-1)).sum(1) / nv.unsqueeze(-1)
    var = (((x - mean.unsqueeze(1)) * valid.unsqueeze(-1)).square().sum(1) / nv.unsqueeze(-1)).mean(-1)
    tol_b = (var * tol).unsqueeze(1)  # [B, 1]: scikit-learn's tolerance, per set
    xx = x.square().sum(-1)
    active = torch.ones(b, r, dtype=torch.bool, device=x.device)
    n_iter = torch.zeros(b, r, dtype=torch.long, device=x.device)
    labels = torch.full((b, m, r), -1, dtype=torch.long, device=x.device)
    for _ in range(max_iter):
        dist = _sq_dist(x, xx, centers).view(b, m, r, k)
        new_labels = dist.argmin(-1)  # [B, M, R]
        # weighted means: one-hot weights [B, R*K, M] times the points
        onehot = torch.nn.functional.one_hot(new_labels, k).to(x.dtype) * w[:, :, None, None]
        onehot = onehot.permute(0, 2, 3, 1).reshape(b, r * k, m)
        mass = onehot.sum(-1, keepdim=True)
        new = torch.where(mass > 0, (onehot @ x) / mass.clamp_min(1e-30), centers)
        shift = (new - centers).view(b, r, k, d).square().sum((-1, -2))
        same = (new_labels == labels).all(1)
        step = active.repeat_interleave(k, dim=1).unsqueeze(-1)
        centers = torch.where(step, new, centers)
        n_iter += active
        labels = new_labels
        active &= ~(same | (shift <= tol_b))
        if not bool(active.any()):
            break
    dist = _sq_dist(x, xx, centers).view(b, m, r, k)
    inertia = (w.unsqueeze(-1) * dist.amin(-1)).sum(1)  # [B, R]
    best = inertia.argmin(1)
    rows = torch.arange(b, device=x.device)
    return KMeansFit(centers.view(b, r, k, d)[rows, best], inertia[rows, best], n_iter[rows, best])


def assign(embedding: Tensor, centroids: Tensor) -> Tensor:
    """Index of the nearest centroid of every embedding: ``[..., D]`` with centroids ``[K, D]``, or
    ``[B, ..., D]`` with one set per item ``[B, K, D]`` -> ``[...]`` / ``[B, ...]`` (int64)."""
    c = centroids.to(embedding.device, embedding.dtype)
    if c.ndim == 2:
        # |v - c|^2 = |v|^2 - 2 v.c + |c|^2; |v|^2 is the same for every centroid
        return (c.square().sum(-1) - 2.0 * embedding @ c.T).argmin(-1)
    b, d = embedding.shape[0], embedding.shape[-1]
    flat = embedding.reshape(b, -1, d)
    near = (c.square().sum(-1).unsqueeze(1) - 2.0 * flat @ c.transpose(1, 2)).argmin(-1)
    return near.view(embedding.shape[:-1])
