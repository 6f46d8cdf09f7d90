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
* **points centred** first (k-means is the same on them), as scikit-learn does: the probe's
  unit-norm embeddings lie in a narrow cone, where |x|^2 - 2 x.c + |c|^2 in float32 would lose
  about three more digits;
* **Lloyd iterations** until the labels stop changing or the squared centroid shift is at most
  ``tol`` x the mean per-dimension variance of the points, at most ``max_iter``; a cluster that
  loses all its weight takes the point farthest from its centroid, as scikit-learn's does;
* **restarts**: ``n_init`` seedings per excerpt; the one of least weighted inertia wins.

**Random draws.** k-means of such points has several local optima, and which one a fit ends in
depends on its draws: on 100 demo excerpts, fits with draws of their own differ in mean SI-SDR by
~0.3 dB (one standard deviation) through that alone. So an excerpt's seed gives the uniforms that
scikit-learn's ``KMeans(random_state=sklearn_state(seed))`` draws, in its order (``seeding_uniforms``:
numpy's MT19937 stream, on the CPU): with the same points both end in the same optimum, which makes
the two comparable excerpt by excerpt. An excerpt gets the same draws whatever batch it is in and
whatever device fits it; on CPU the result is deterministic.

**Speed.** Lloyd dominates. Each set keeps only its restarts still iterating (packed; a set leaves
once all have converged, and the points are cut after the last weighted one left); an iteration is
two batched products (distances from ``[-2c, |c|^2]`` times ``[x, 1]``; weighted sums and masses from
the weighted one-hot times ``[x, 1]``) and a few float passes for the nearest centroid (``model.lloyd``),
with one small transfer that says which restarts go on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from transfersep.model.fast import cpu_parts, run_split
from transfersep.model.lloyd import extended, lloyd, nearest

Seed = int | Sequence[int]


def torch_seed(seed: Seed) -> int:
    """A ``torch.Generator`` seed from an int or a tuple of ints (numpy's SeedSequence mixes them)."""
    entropy = [int(s) for s in seed] if isinstance(seed, Sequence) else int(seed)
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0] >> np.uint64(1))


def generator(seed: Seed) -> torch.Generator:
    return torch.Generator().manual_seed(torch_seed(seed))


def sklearn_state(seed: Seed) -> int:
    """The ``random_state`` of scikit-learn's ``KMeans`` that draws what ``weighted_kmeans`` draws for ``seed``."""
    entropy = [int(s) for s in seed] if isinstance(seed, Sequence) else int(seed)
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint32)[0] >> np.uint32(1))


def seeding_uniforms(seed: Seed, n_init: int, k: int) -> Tensor:
    """The uniforms ``[n_init, k, trials]`` (float64) that greedy k-means++ consumes for ``seed``: those
    scikit-learn's ``KMeans(random_state=sklearn_state(seed))`` draws, in its order (per restart, one for
    the first centre, then ``trials`` for each further one, all from one MT19937 stream), so that with
    the same points both pick the same seeds and reach the same optimum."""
    trials = 2 + int(math.log(k))
    draws = np.random.RandomState(sklearn_state(seed)).random_sample((n_init, 1 + (k - 1) * trials))
    u = np.zeros((n_init, k, trials))
    u[:, 0, 0] = draws[:, 0]
    u[:, 1:] = draws[:, 1:].reshape(n_init, k - 1, trials)
    return torch.from_numpy(u)


@dataclass
class KMeansFit:
    centroids: Tensor  # [B, K, D]
    inertia: Tensor  # [B]: sum of weight x squared distance to the nearest centroid
    n_iter: Tensor  # [B]: Lloyd iterations of the winning restart


def _draw(cum: Tensor, u: Tensor, right: bool) -> Tensor:
    """Indices drawn from the unnormalised cumulative weights ``cum [N, M]`` (float64) at uniforms
    ``u [N, J]``; ``right`` as numpy's ``side="right"`` (scikit-learn's first centre), else ``"left"``."""
    idx = torch.searchsorted(cum, u * cum[:, -1:], right=right)
    return idx.clamp_(max=cum.shape[1] - 1)


def _gather(x: Tensor, idx: Tensor) -> Tensor:
    """Rows ``idx [B, J]`` of ``x [B, M, D]`` -> ``[B, J, D]``."""
    return x.gather(1, idx.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def kmeans_pp(x: Tensor, w: Tensor, k: int, uniforms: Tensor, x1: Tensor | None = None) -> Tensor:
    """Greedy weighted k-means++ seeding of ``R`` runs on each of ``B`` point sets: points ``x [B, M, D]``,
    weights ``w [B, M]``, uniforms ``[B, R, k, trials]`` in [0, 1) -> centroids ``[B, R, k, D]``.
    The runs of a set share its points (their distances come from one product per step); ``x1`` is
    ``[x, 1]`` as columns ``[B, D+1, M]`` if the caller has it."""
    b, m, d = x.shape
    r, trials = uniforms.shape[1], uniforms.shape[3]
    if x1 is None:
        x1 = torch.cat([x, torch.ones_like(x[..., :1])], -1).transpose(1, 2).contiguous()
    xx = x.square().sum(-1).unsqueeze(1)  # [B, 1, M]

    def sq_dist(c: Tensor) -> Tensor:  # [B, J, D] -> [B, J, M]
        return torch.baddbmm(xx, extended(c), x1).clamp_min_(0.0)

    # the cumulative weights in float64, as scikit-learn sums them (a float32 running sum of ~1e4
    # terms drifts by ~1e-4): a draw then lands on the point scikit-learn's lands on
    w64 = w.double()
    uniforms = uniforms.to(x.device, torch.float64)
    centers = x.new_empty(b, r, k, d)
    first = _draw(w64.cumsum(1), uniforms[:, :, 0, 0], right=True)  # [B, R]
    centers[:, :, 0] = _gather(x, first)
    closest = sq_dist(centers[:, :, 0])  # [B, R, M]
    for c in range(1, k):
        cum = (closest * w64.unsqueeze(1)).cumsum(-1).view(b * r, m)
        cand = _draw(cum, uniforms[:, :, c].reshape(b * r, trials), right=False).view(b, r * trials)
        cand_x = _gather(x, cand)  # [B, R*T, D]
        d_cand = torch.minimum(sq_dist(cand_x).view(b, r, trials, m), closest.unsqueeze(2))
        # the candidate leaving the least weighted potential
        best = torch.bmm(d_cand.view(b, r * trials, m), w.unsqueeze(-1)).view(b, r, trials).argmin(-1)
        centers[:, :, c] = cand_x.view(b, r, trials, d).gather(2, best[..., None, None].expand(-1, -1, 1, d))[:, :, 0]
        closest = d_cand.gather(2, best[:, :, None, None].expand(-1, -1, 1, m))[:, :, 0]
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
        # CPU: the sets shared out to the intra-op threads, one thread each. An op here is small (~1e5
        # elements) and many run an iteration; split across threads, each op costs a barrier, which a
        # core busy with other work stalls (38 s instead of 0.5 s for the 100 demo excerpts on two
        # shared cores); whole sets split without one, and no result changes.
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
    valid = w > 0
    nv = valid.sum(1).clamp_min(1)
    mean = (x * valid.unsqueeze(-1)).sum(1, keepdim=True) / nv[:, None, None]
    # k-means is the same on centred points, and as scikit-learn does, they are centred first: the
    # probe's unit-norm embeddings lie in a narrow cone (|x|^2 = 1, distances ~1e-2), where
    # |x|^2 - 2 x.c + |c|^2 in float32 loses three digits more than on centred points
    x = x - mean
    var = ((x * valid.unsqueeze(-1)).square().sum(1) / nv.unsqueeze(-1)).mean(-1)
    tol_b = var * tol  # [B]: scikit-learn's tolerance (unweighted variance), per set
    u = torch.stack([seeding_uniforms(s, n_init, k) for s in seeds])
    r = n_init
    # points as columns with a row of ones [B, D+1, M]: one product gives the distances (less |x|^2)
    # from [-2c, |c|^2], and one gives the weighted sums and the masses from the weighted one-hot
    x1 = torch.cat([x, torch.ones_like(x[..., :1])], -1).transpose(1, 2).contiguous()
    centers = kmeans_pp(x, w, k, u, x1)  # [B, R, K, D]
    n_iter = lloyd(x1, w, centers, tol_b, max_iter)
    # every restart's weighted inertia on all its points, summed in float64 (restarts that reach
    # the same optimum differ only by rounding; ones that do not differ by far more)
    near = nearest(torch.bmm(extended(centers.view(b, r * k, d)), x1).view(b, r, k, m))[1]
    dist = (near + x.square().sum(-1).unsqueeze(1)).clamp_min_(0.0)
    inertia = (dist.double() * w.double().unsqueeze(1)).sum(-1)  # [B, R]
    best = inertia.argmin(1)
    rows = torch.arange(b, device=x.device)
    return KMeansFit(centers[rows, best] + mean, inertia[rows, best], n_iter[rows, best])


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
    near = nearest(rel)[0].long()
    return near.view(embedding.shape[:-1])
