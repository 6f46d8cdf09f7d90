"""The zero-shot probe: how well a pretrained model separates a downstream set before any fine-tuning.

ChimeraNet's deep-clustering head separates without a mask head, as deep clustering does at
inference (Hershey et al. 2016): the unit-norm embeddings ``V [T, F, D]`` of a mixture are
clustered into K groups with k-means, each group becomes a binary mask on the mixture STFT, and the
masked spectrograms are inverted with the mixture phase. K is the number of sources of the
downstream set. Pretraining never sees the downstream instruments, so this measures what the
pretrained embedding space transfers on its own.

Choices (the paper has no such probe):

* **Bins.** The DC loss weighs each time-frequency bin by the mixture magnitude (``model.losses.
  magnitude_weights``): near-silent bins carry no training signal and their embeddings are
  arbitrary. The probe fits the centroids on the bins within ``floor_db`` (40 dB) of the excerpt's
  loudest bin, each weighted by its magnitude (weighted k-means); every bin, silent ones included,
  then goes to its nearest centroid. At most ``max_fit_bins`` bins (a seeded random subset of the
  kept ones) fit the centroids, so a paper-size 10-s excerpt (321 k bins) costs about as much as a
  demo one.
* **k-means.** ``model.kmeans``: scikit-learn's algorithm (greedy k-means++, Lloyd, ``n_init``
  restarts, the least weighted inertia wins) in torch, every excerpt of a batch fitted at once on
  the device that computed its embeddings; seeded per excerpt from the run's seed, with the draws
  scikit-learn's ``KMeans`` makes for that seed (``kmeans.sklearn_state``), so that the two reach the
  same optimum. With 3 restarts the optimum found still depends on the seed on some excerpts: over
  100 excerpts of the demo, other seeds move the mean SI-SDR by ~0.3 dB (one standard deviation).
* **Permutation.** Clusters carry no labels. Each excerpt's clusters are matched to its reference
  sources by the assignment that maximises the summed SI-SDR (``scipy.optimize.
  linear_sum_assignment`` on the K x C SI-SDR matrix) — an oracle permutation, as permutation-free
  separators are scored. Silent references (see ``evaluation.sisdr``) do not steer the assignment.

The probe writes the same ``scores.csv`` / ``result.json`` as a fine-tune (``evaluation.evaluate``), on the
same fixed test excerpts, in ``<study>/zeroshot/<pretrain>-<augment>-<downstream>/``
(grid point ``finetune=zeroshot``; ``sweeps/zeroshot.yaml`` runs it for every pretrained model).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from transfersep.audio import STFT
from transfersep.model import ChimeraNet
from transfersep.model.kmeans import KMeansFit, Seed, assign, generator, weighted_kmeans
from transfersep.model.masking import apply_masks

FLOOR_DB = 40.0
MAX_FIT_BINS = 20000
N_INIT = 3


def loud_bins(embedding: Tensor, magnitude: Tensor, floor_db: float = FLOOR_DB) -> tuple[Tensor, Tensor]:
    """The embeddings ``[M, D]`` and magnitudes ``[M]`` (float32, on the input's device) of the bins within
    ``floor_db`` of the loudest bin of ``magnitude [..., T, F]`` (``embedding [..., T, F, D]``); none if all silent."""
    v = embedding.detach().reshape(-1, embedding.shape[-1]).float()
    w = magnitude.detach().reshape(-1).float()
    peak = w.max() if w.numel() else w.new_zeros(())
    if not bool(peak > 0):
        return v[:0], w[:0]
    keep = (w >= peak * 10.0 ** (-floor_db / 20.0)).nonzero()[:, 0]
    return v[keep], w[keep]


def _seed_tuple(seed: Seed) -> tuple[int, ...]:
    return tuple(int(s) for s in seed) if isinstance(seed, Sequence) else (int(seed),)


def fit_subset(n: int, max_fit_bins: int, seed: Seed) -> Tensor | None:
    """The (sorted) indices of the ``max_fit_bins`` of ``n`` loud bins that fit an excerpt's centroids,
    drawn from its seed; None when all of them do."""
    if n <= max_fit_bins:
        return None
    return torch.randperm(n, generator=generator(seed))[:max_fit_bins].sort().values


def kmeans_seed(seed: Seed) -> tuple[int, ...]:
    """The seed of an excerpt's k-means draws (``model.kmeans``), apart from that of its subset."""
    return (*_seed_tuple(seed), 1)


def _fit_sets(
    sets: list[tuple[Tensor, Tensor]], k: int, seeds: list[Seed], max_fit_bins: int, n_init: int
) -> KMeansFit:
    """Weighted k-means of every (bins ``[M_i, D]``, weights ``[M_i]``) set at once: at most ``max_fit_bins``
    bins of each (a subset drawn from the set's seed), zero-weight padding up to the largest."""
    picked = []
    for (v, w), seed in zip(sets, seeds):
        pick = fit_subset(len(v), max_fit_bins, seed)
        if pick is not None:
            pick = pick.to(v.device)
            v, w = v[pick], w[pick]
        picked.append((v, w))
    m = max(len(v) for v, _ in picked)
    # padding repeats a real bin (weight 0), so that even a degenerate k-means++ draw is a real bin
    x = torch.stack([torch.cat([v, v[:1].expand(m - len(v), -1)]) for v, _ in picked])
    wt = torch.stack([torch.cat([w, w.new_zeros(m - len(w))]) for _, w in picked])
    return weighted_kmeans(x, wt, k, [kmeans_seed(s) for s in seeds], n_init=n_init)


def fit_centroids(
    v: Tensor,
    w: Tensor,
    k: int,
    seed: Seed = 0,
    max_fit_bins: int = MAX_FIT_BINS,
    n_init: int = N_INIT,
) -> Tensor:
    """Centroids ``[k', D]`` (k' = min(k, bins)) of magnitude-weighted k-means on bins ``v [M, D]``
    with weights ``w [M]`` (torch, on their device); at most ``max_fit_bins`` of them (a seeded subset) are used."""
    v, w = torch.as_tensor(v).float(), torch.as_tensor(w).float()
    return _fit_sets([(v, w)], min(k, len(v)), [seed], max_fit_bins, n_init).centroids[0]


def batch_kmeans_labels(
    embedding: Tensor,
    magnitude: Tensor,
    k: int,
    seeds: Sequence[Seed],
    floor_db: float = FLOOR_DB,
    max_fit_bins: int = MAX_FIT_BINS,
    n_init: int = N_INIT,
) -> Tensor:
    """Cluster index ``[B, T, F]`` (int64, in ``0..k-1``) of every bin of each excerpt, k-means fitted
    on each excerpt on its own and all excerpts at once (``model.kmeans``), on the embeddings' device.

    Args:
        embedding: ``[B, T, F, D]`` embeddings.
        magnitude: ``[B, T, F]`` mixture magnitudes: the weight of each bin, and which bins fit the centroids.
        k: number of clusters (the downstream set's source count).
        seeds: one per excerpt: its subset and k-means++ draws (the same excerpt and seed give the
            same labels, whatever else is in the batch).
    """
    labels = torch.zeros(magnitude.shape, dtype=torch.long, device=embedding.device)
    sets = [loud_bins(embedding[i], magnitude[i], floor_db) for i in range(len(embedding))]
    audible = [i for i, (v, _) in enumerate(sets) if len(v)]  # a silent excerpt stays one cluster
    if audible:
        fit = _fit_sets([sets[i] for i in audible], k, [seeds[i] for i in audible], max_fit_bins, n_init)
        if len(audible) == len(embedding):  # the usual case: no copy of the embeddings
            labels = assign(embedding.float(), fit.centroids)
        else:
            labels[audible] = assign(embedding[audible].float(), fit.centroids)
    return labels


def kmeans_labels(
    embedding: Tensor,
    magnitude: Tensor,
    k: int,
    seed: Seed = 0,
    floor_db: float = FLOOR_DB,
    max_fit_bins: int = MAX_FIT_BINS,
    n_init: int = N_INIT,
) -> Tensor:
    """Cluster index ``[T, F]`` of every bin of one excerpt (``embedding [T, F, D]``, ``magnitude [T, F]``);
    see ``batch_kmeans_labels``."""
    return batch_kmeans_labels(embedding[None], magnitude[None], k, [seed], floor_db, max_fit_bins, n_init)[0]


def _on_net(net: ChimeraNet, mix: Tensor) -> Tensor:
    """Mixtures ``[B, N]`` as float32 on the network's device."""
    return torch.as_tensor(mix).to(next(net.parameters()).device, torch.float32)


def _embed(net: ChimeraNet, spec: Tensor) -> tuple[Tensor, Tensor]:
    """``(magnitude [B, T, F], embedding [B, T, F, D])`` of mixture spectrograms ``spec [B, T, F]``."""
    mag = spec.abs()
    return mag, net.embed(net.features(mag))


def _binary(labels: Tensor, k: int, device: torch.device) -> Tensor:
    """The binary masks ``[B, K, T, F]`` of cluster indices ``labels [B, T, F]``."""
    return torch.nn.functional.one_hot(labels.to(device), k).permute(0, 3, 1, 2).float()


class ClusterSeparator:
    """``mix [B, N] -> clusters [B, K, N]``: binary k-means masks of a model's DC embeddings, k-means
    fitted on each excerpt on its own.

    The K outputs are unlabelled; score them through ``match_to_references``. Excerpt ``i`` of a
    call is clustered with seed ``(seed, call, i)``, so a run is reproducible.
    """

    def __init__(
        self,
        net: ChimeraNet,
        stft: STFT,
        k: int,
        seed: int = 0,
        floor_db: float = FLOOR_DB,
        max_fit_bins: int = MAX_FIT_BINS,
    ):
        self.net, self.stft, self.k, self.seed = net.eval(), stft, int(k), int(seed)
        self.floor_db, self.max_fit_bins, self._calls = floor_db, int(max_fit_bins), 0

    @torch.inference_mode()
    def __call__(self, mix: Tensor) -> Tensor:
        seeds = [(self.seed, self._calls, i) for i in range(int(mix.shape[0]))]

        def masks_of(spec: Tensor) -> Tensor:
            mag, emb = _embed(self.net, spec)
            labels = batch_kmeans_labels(emb, mag, self.k, seeds, self.floor_db, self.max_fit_bins)
            return _binary(labels, self.k, spec.device)

        out = apply_masks(self.stft, _on_net(self.net, mix), masks_of)
        self._calls += 1
        return out


class CentroidSeparator:
    """``mix [B, N] -> clusters [B, K, N]`` with fixed centroids ``[K, D]`` (fitted once for a whole
    recording by ``fit_centroids``), so that cluster k is the same group in every chunk of it."""

    def __init__(self, net: ChimeraNet, stft: STFT, centroids: np.ndarray | Tensor):
        self.net, self.stft, self.k = net.eval(), stft, int(len(centroids))
        self.centroids = torch.as_tensor(centroids, dtype=torch.float32).detach()

    @torch.inference_mode()
    def __call__(self, mix: Tensor) -> Tensor:
        def masks_of(spec: Tensor) -> Tensor:
            _, emb = _embed(self.net, spec)
            return _binary(assign(emb, self.centroids.to(emb.device)), self.k, spec.device)

        return apply_masks(self.stft, _on_net(self.net, mix), masks_of)

    @classmethod
    @torch.inference_mode()
    def for_recording(
        cls,
        net: ChimeraNet,
        stft: STFT,
        chunks,
        k: int,
        seed: int = 0,
        floor_db: float = FLOOR_DB,
        max_fit_bins: int = MAX_FIT_BINS,
        per_chunk: int = 4000,
    ) -> CentroidSeparator:
        """Fit the centroids on a whole recording, given as an iterable of 16 kHz mono chunks ``[B, n]``
        (every channel of it: one set of clusters serves all channels). Each chunk contributes at most
        ``per_chunk`` of its loud bins (a seeded subset), so memory stays bounded for long files."""
        net.eval()
        g = generator((seed, 1))
        vs, ws = [], []
        for x in chunks:
            mag, emb = _embed(net, stft(_on_net(net, x)))
            v, w = loud_bins(emb, mag, floor_db)
            if len(v) > per_chunk:
                pick = torch.randperm(len(v), generator=g)[:per_chunk].to(v.device)
                v, w = v[pick], w[pick]
            vs.append(v)
            ws.append(w)
        if not sum(len(v) for v in vs):
            raise ValueError("the recording is silent: there is nothing to cluster")
        return cls(net, stft, fit_centroids(torch.cat(vs), torch.cat(ws), k, seed, max_fit_bins))


def cluster_model(lm, chunks, k: int, seed: int = 0):
    """A copy of a loaded model (``model.package.LoadedModel``) whose ``separate`` writes the K clusters of its
    DC embeddings (``cluster_1`` … ``cluster_K``, unlabelled) instead of its mask-head sources, with
    centroids fitted once on ``chunks`` (16 kHz mono ``[B, n]`` pieces of the whole recording, every
    channel), so that a cluster is the same group all through the file and across its channels."""
    import dataclasses

    sep = CentroidSeparator.for_recording(lm.net, lm.stft, chunks, k, seed)
    names = [f"cluster_{i + 1}" for i in range(sep.k)]
    out = dataclasses.replace(lm, source_names=names, meta={**lm.meta, "clusters": sep.k, "sources": names})
    out.separate = sep  # an instance attribute: the pipeline calls model.separate(mix [B, n])
    return out
