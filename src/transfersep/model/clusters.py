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
  loudest bin, each weighted by its magnitude (scikit-learn's weighted k-means, ``sample_weight``);
  every bin, silent ones included, then goes to its nearest centroid. At most ``max_fit_bins`` bins
  (a seeded random subset of the kept ones) fit the centroids, so a paper-size 10-s excerpt
  (321 k bins) costs about as much as a demo one.
* **k-means.** ``sklearn.cluster.KMeans`` (k-means++, ``n_init`` restarts, seeded per excerpt from the
  run's seed), the well-kept implementation of weighted k-means.
* **Permutation.** Clusters carry no labels. Each excerpt's clusters are matched to its reference
  sources by the assignment that maximises the summed SI-SDR (``scipy.optimize.
  linear_sum_assignment`` on the K x C SI-SDR matrix) — an oracle permutation, as permutation-free
  separators are scored. Silent references (see ``evaluation.sisdr``) do not steer the assignment.

The probe writes the same ``scores.csv`` / ``result.json`` as a fine-tune (``evaluation.evaluate``), on the
same fixed test excerpts, in ``<study>/zeroshot/<pretrain>-<augment>-<downstream>/``
(grid point ``finetune=zeroshot``; ``sweeps/zeroshot.yaml`` runs it for every pretrained model).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from transfersep.audio import STFT
from transfersep.model import ChimeraNet
from transfersep.model.masking import apply_masks

FLOOR_DB = 40.0
MAX_FIT_BINS = 20000
N_INIT = 3


def loud_bins(embedding: Tensor, magnitude: Tensor, floor_db: float = FLOOR_DB) -> tuple[np.ndarray, np.ndarray]:
    """The embeddings ``[M, D]`` (float64) and magnitudes ``[M]`` of the bins within ``floor_db`` of
    the loudest bin of ``magnitude [..., T, F]`` (``embedding [..., T, F, D]``); none if all silent."""
    d = embedding.shape[-1]
    v = embedding.detach().reshape(-1, d).double().cpu().numpy()
    w = magnitude.detach().reshape(-1).double().cpu().numpy()
    peak = float(w.max()) if w.size else 0.0
    if peak <= 0.0:
        return v[:0], w[:0]
    keep = w >= peak * 10.0 ** (-floor_db / 20.0)
    return v[keep], w[keep]


def fit_centroids(
    v: np.ndarray,
    w: np.ndarray,
    k: int,
    seed: int | tuple[int, ...] = 0,
    max_fit_bins: int = MAX_FIT_BINS,
    n_init: int = N_INIT,
) -> np.ndarray:
    """Centroids ``[k', D]`` (k' = min(k, bins)) of magnitude-weighted k-means on bins ``v [M, D]``
    with weights ``w [M]``; at most ``max_fit_bins`` of them (a seeded subset) are used."""
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(seed)
    if len(v) > max_fit_bins:
        pick = np.sort(rng.choice(len(v), max_fit_bins, replace=False))
        v, w = v[pick], w[pick]
    km = KMeans(n_clusters=min(k, len(v)), n_init=n_init, random_state=int(rng.integers(2**31 - 1)))
    return km.fit(v, sample_weight=w).cluster_centers_


def assign(embedding: Tensor, centroids: np.ndarray | Tensor) -> Tensor:
    """Index of the nearest centroid (Euclidean, as k-means) of every embedding ``[..., D]`` -> ``[...]``."""
    c = torch.as_tensor(centroids, dtype=embedding.dtype, device=embedding.device)
    # |v - c|^2 = |v|^2 - 2 v.c + |c|^2; |v|^2 is the same for every centroid
    return (c.square().sum(-1) - 2.0 * embedding @ c.T).argmin(-1)


def kmeans_labels(
    embedding: Tensor,
    magnitude: Tensor,
    k: int,
    seed: int | tuple[int, ...] = 0,
    floor_db: float = FLOOR_DB,
    max_fit_bins: int = MAX_FIT_BINS,
    n_init: int = N_INIT,
) -> Tensor:
    """Cluster index ``[T, F]`` (int64, in ``0..k-1``) of every bin of one excerpt.

    Args:
        embedding: ``[T, F, D]`` embeddings of the excerpt.
        magnitude: ``[T, F]`` mixture magnitude: the weight of each bin, and which bins fit the centroids.
        k: number of clusters (the downstream set's source count).
        seed: seeds the subset and k-means++ (the same excerpt and seed give the same labels).
    """
    v, w = loud_bins(embedding, magnitude, floor_db)
    if not len(v):  # a silent excerpt: every bin in one cluster
        return torch.zeros(magnitude.shape, dtype=torch.long)
    return assign(embedding.detach().double().cpu(), fit_centroids(v, w, k, seed, max_fit_bins, n_init))


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
        def masks_of(spec: Tensor) -> Tensor:
            mag, emb = _embed(self.net, spec)
            labels = torch.stack(
                [
                    kmeans_labels(
                        emb[i],
                        mag[i],
                        self.k,
                        seed=(self.seed, self._calls, i),
                        floor_db=self.floor_db,
                        max_fit_bins=self.max_fit_bins,
                    )
                    for i in range(mag.shape[0])
                ]
            )
            return _binary(labels, self.k, spec.device)

        out = apply_masks(self.stft, _on_net(self.net, mix), masks_of)
        self._calls += 1
        return out


class CentroidSeparator:
    """``mix [B, N] -> clusters [B, K, N]`` with fixed centroids ``[K, D]`` (fitted once for a whole
    recording by ``fit_centroids``), so that cluster k is the same group in every chunk of it."""

    def __init__(self, net: ChimeraNet, stft: STFT, centroids: np.ndarray):
        self.net, self.stft, self.k = net.eval(), stft, int(len(centroids))
        self.centroids = torch.as_tensor(centroids, dtype=torch.float32)

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
        rng = np.random.default_rng([seed, 1])
        vs, ws = [], []
        for x in chunks:
            mag, emb = _embed(net, stft(_on_net(net, x)))
            v, w = loud_bins(emb, mag, floor_db)
            if len(v) > per_chunk:
                pick = rng.choice(len(v), per_chunk, replace=False)
                v, w = v[pick], w[pick]
            vs.append(v)
            ws.append(w)
        v = np.concatenate(vs) if vs else np.zeros((0, 1))
        if not len(v):
            raise ValueError("the recording is silent: there is nothing to cluster")
        return cls(net, stft, fit_centroids(v, np.concatenate(ws), k, seed, max_fit_bins))


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
