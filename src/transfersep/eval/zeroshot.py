"""The zero-shot probe: how well a pretrained model separates a downstream set before any fine-tuning.

ChimeraNet's deep-clustering head separates without a mask head, as deep clustering does at
inference (Hershey et al. 2016): the unit-norm embeddings ``V [T, F, D]`` of a mixture are
clustered into K groups with k-means, each group becomes a binary mask on the mixture STFT, and the
masked spectrograms are inverted with the mixture phase. K is the number of sources of the
downstream set. Pretraining never sees the downstream instruments, so this measures what the
pretrained embedding space transfers on its own.

Choices (the paper has no such probe):

* **Bins.** The DC loss weighs each time-frequency bin by the mixture magnitude (``losses.
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
  separators are scored. Silent references (see ``eval.sisdr``) do not steer the assignment.

The probe writes the same ``scores.csv`` / ``result.json`` as a fine-tune (``eval.evaluate``), on the
same fixed test excerpts, in ``<study>/zeroshot/<pretrain>-<augment>-<downstream>/``
(grid point ``finetune=zeroshot``; ``sweeps/zeroshot.yaml`` runs it for every pretrained model).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from transfersep.audio import STFT
from transfersep.eval.sisdr import silent_reference
from transfersep.models import ChimeraNet

FLOOR_DB = 40.0
MAX_FIT_BINS = 20000
N_INIT = 3


def kmeans_labels(embedding: Tensor, magnitude: Tensor, k: int, seed: int | tuple[int, ...] = 0, floor_db: float = FLOOR_DB,
                  max_fit_bins: int = MAX_FIT_BINS, n_init: int = N_INIT) -> Tensor:
    """Cluster index ``[T, F]`` (int64, in ``0..k-1``) of every bin of one excerpt.

    Args:
        embedding: ``[T, F, D]`` embeddings of the excerpt.
        magnitude: ``[T, F]`` mixture magnitude: the weight of each bin, and which bins fit the centroids.
        k: number of clusters (the downstream set's source count).
        seed: seeds the subset and k-means++ (the same excerpt and seed give the same labels).
    """
    from sklearn.cluster import KMeans

    t, f, d = embedding.shape
    v = embedding.detach().reshape(-1, d).double().cpu().numpy()
    w = magnitude.detach().reshape(-1).double().cpu().numpy()
    peak = float(w.max()) if w.size else 0.0
    if peak <= 0.0:  # a silent excerpt: every bin in one cluster
        return torch.zeros(t, f, dtype=torch.long)
    keep = np.flatnonzero(w >= peak * 10.0 ** (-floor_db / 20.0))
    rng = np.random.default_rng(seed)
    if keep.size > max_fit_bins:
        keep = np.sort(rng.choice(keep, max_fit_bins, replace=False))
    k_fit = min(k, int(keep.size))
    km = KMeans(n_clusters=k_fit, n_init=n_init, random_state=int(rng.integers(2**31 - 1)))
    km.fit(v[keep], sample_weight=w[keep])
    return torch.from_numpy(km.predict(v).astype(np.int64)).reshape(t, f)


def match_to_references(est: Tensor, ref: Tensor, silence_db: float | None = None) -> Tensor:
    """Reorder unlabelled estimates to their best-matching references, per excerpt.

    Args:
        est: ``[B, K, N]`` estimates in arbitrary order (K >= C).
        ref: ``[B, C, N]`` references.

    Returns:
        ``[B, C, N]``: ``out[b, c]`` is the estimate assigned to reference ``c`` by the assignment
        that maximises the summed SI-SDR over the non-silent references of excerpt ``b``.
    """
    from torchmetrics.functional.audio import scale_invariant_signal_distortion_ratio as si_sdr

    from transfersep.eval.sisdr import SILENCE_DB

    b, k, n = est.shape
    c = ref.shape[1]
    if k < c:
        raise ValueError(f"{k} estimates cannot cover {c} references")
    e64, r64 = est.detach().double().cpu(), ref.detach().double().cpu()
    m = si_sdr(e64[:, :, None, :].expand(b, k, c, n), r64[:, None, :, :].expand(b, k, c, n), zero_mean=True)
    silent = silent_reference(r64, SILENCE_DB if silence_db is None else silence_db)  # [B, C]
    m = torch.nan_to_num(m, nan=-1e3, posinf=1e3, neginf=-1e3).masked_fill(silent[:, None, :], 0.0)
    out = torch.empty(b, c, n, dtype=est.dtype, device=est.device)
    for i in range(b):
        rows, cols = linear_sum_assignment(m[i].numpy(), maximize=True)
        out[i, torch.as_tensor(cols)] = est[i, torch.as_tensor(rows)]
    return out


class ClusterSeparator:
    """``mix [B, N] -> clusters [B, K, N]``: binary k-means masks of a model's DC embeddings.

    The K outputs are unlabelled; score them through ``match_to_references``. Excerpt ``i`` of a
    call is clustered with seed ``(seed, call, i)``, so a run is reproducible.
    """

    def __init__(self, net: ChimeraNet, stft: STFT, k: int, seed: int = 0, floor_db: float = FLOOR_DB,
                 max_fit_bins: int = MAX_FIT_BINS):
        self.net, self.stft, self.k, self.seed = net.eval(), stft, int(k), int(seed)
        self.floor_db, self.max_fit_bins, self._calls = floor_db, int(max_fit_bins), 0

    @torch.inference_mode()
    def __call__(self, mix: Tensor) -> Tensor:
        dev = next(self.net.parameters()).device
        spec = self.stft(mix.to(dev, torch.float32))  # [B, T, F] complex
        mag = spec.abs()
        emb = self.net.embed(self.net.features(mag))  # [B, T, F, D]
        masks = torch.zeros(mag.shape[0], self.k, *mag.shape[1:], device=dev)
        for i in range(mag.shape[0]):
            labels = kmeans_labels(emb[i], mag[i], self.k, seed=(self.seed, self._calls, i),
                                   floor_db=self.floor_db, max_fit_bins=self.max_fit_bins).to(dev)
            masks[i].scatter_(0, labels[None], 1.0)
        self._calls += 1
        return self.stft.inverse(masks * spec.unsqueeze(1), mix.shape[-1])
