"""The zero-shot probe's clustering, the torch k-means against the scikit-learn path it replaced.

Both paths cluster the same embeddings: those of generated 3-source excerpts (``data.generated``)
made to look like a trained model's (each bin's embedding is the unit-norm mix of one random
prototype per source, weighted by that source's share of the bin's power, plus noise), so that the
clusters separate something and the two paths' SI-SDR can be compared. The timed part is the
clustering (embeddings and magnitudes in, labels out): the network's forward pass is the same for
both and is timed by the ``probe-run`` row. Sizes as in the study: "demo" = 1-s excerpts, D = 10,
batches of 8; "paper" = 10-s excerpts, D = 20, batches of 24.

The scikit-learn path (``sklearn_labels``) is the probe's earlier code: one excerpt at a time,
float64 on the CPU, ``KMeans(n_init=3)`` with ``sample_weight`` on the same loud bins and subset,
with ``random_state=sklearn_state(seed)``: the k-means++ draws of the torch path for that seed. With
draws of their own the two would differ by which local optimum each seed found (on the 100 demo
excerpts a spread of ~0.3 dB in mean SI-SDR), not by how they compute.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch import Tensor

from transfersep.audio import STFT
from transfersep.data.generated import GeneratedExcerpts
from transfersep.evaluation.matching import match_to_references
from transfersep.evaluation.sisdr import batch_sisdr, excerpt_means
from transfersep.model.clusters import (
    FLOOR_DB,
    MAX_FIT_BINS,
    N_INIT,
    batch_kmeans_labels,
    fit_subset,
    kmeans_seed,
    loud_bins,
)
from transfersep.model.kmeans import sklearn_state

SIZES = {"demo": {"seconds": 1.0, "dim": 10, "batch": 8}, "paper": {"seconds": 10.0, "dim": 20, "batch": 24}}
K = 3


def sklearn_labels(emb: Tensor, mag: Tensor, k: int, seed: tuple[int, ...], n_init: int = N_INIT) -> Tensor:
    """Labels ``[T, F]`` of one excerpt by scikit-learn's weighted KMeans (the probe's earlier path)."""
    from sklearn.cluster import KMeans

    v = emb.reshape(-1, emb.shape[-1]).double().cpu().numpy()
    w = mag.reshape(-1).double().cpu().numpy()
    if w.max() <= 0:
        return torch.zeros(mag.shape, dtype=torch.long)
    keep = w >= w.max() * 10.0 ** (-FLOOR_DB / 20.0)
    fv, fw = v[keep], w[keep]
    # the same subset and the same k-means++ draws as the torch path (common random numbers): the two
    # then differ only where their arithmetic does, not by which local optimum each seed happens to find
    pick = fit_subset(len(fv), MAX_FIT_BINS, seed)
    if pick is not None:
        fv, fw = fv[pick.numpy()], fw[pick.numpy()]
    km = KMeans(n_clusters=min(k, len(fv)), n_init=n_init, random_state=sklearn_state(kmeans_seed(seed)))
    c = km.fit(fv, sample_weight=fw).cluster_centers_
    return torch.from_numpy(((c**2).sum(-1) - 2.0 * v @ c.T).argmin(-1).reshape(mag.shape))


def synthetic_batch(
    data: GeneratedExcerpts, start: int, n: int, dim: int, stft: STFT, seed: int = 0
) -> dict[str, Tensor]:
    """Excerpts ``start..start+n-1``: {"mix" [B, N], "sources" [B, C, N], "spec" [B, T, F], "emb" [B, T, F, D]}."""
    items = [data[i] for i in range(start, start + n)]
    sources = torch.stack([it["sources"] for it in items])
    mix = sources.sum(1)
    power = stft(sources).abs().square()  # [B, C, T, F]
    share = power / power.sum(1, keepdim=True).clamp_min(1e-12)
    g = torch.Generator().manual_seed(seed)
    protos = torch.rand(sources.shape[1], dim, generator=g)  # one positive prototype per source
    emb = torch.einsum("bctf,cd->btfd", share, protos)
    emb += 0.15 * torch.randn(emb.shape, generator=g)
    emb = torch.nn.functional.normalize(emb.sigmoid(), dim=-1)  # as ChimeraNet's embedding: sigmoid, unit norm
    return {"mix": mix, "sources": sources, "spec": stft(mix), "emb": emb}


def _scores(stft: STFT, batch: dict[str, Tensor], labels: Tensor) -> np.ndarray:
    """Per-excerpt mean SI-SDR of the clusters of ``labels`` after the oracle matching."""
    spec = batch["spec"]
    masks = torch.nn.functional.one_hot(labels.to(spec.device), K).permute(0, 3, 1, 2).float()
    est = stft.inverse(masks * spec.unsqueeze(1), batch["mix"].shape[-1])
    ref = batch["sources"].to(est.device)
    scores, silent = batch_sisdr(match_to_references(est, ref), ref)
    return excerpt_means(scores.numpy(), silent.numpy())


def partition_inertia(emb: Tensor, mag: Tensor, labels: Tensor) -> np.ndarray:
    """Per excerpt, the weighted inertia of a partition of its loud bins (each cluster about its weighted
    mean): the k-means objective, so two paths' partitions compare whatever subset each was fitted on."""
    out = []
    for i in range(len(mag)):
        v, w = loud_bins(emb[i], mag[i])
        keep = mag[i].reshape(-1) >= mag[i].max() * 10.0 ** (-FLOOR_DB / 20.0)
        lab = labels[i].reshape(-1)[keep]
        onehot = torch.nn.functional.one_hot(lab, K).double() * w.double()[:, None]  # [M, K]
        mean = (onehot.T @ v.double()) / onehot.sum(0).clamp_min(1e-30)[:, None]
        out.append(float((onehot * (v.double()[:, None] - mean[None]).square().sum(-1)).sum()))
    return np.array(out)


def bench_probe(size: str, excerpts: int, repeats: int, device: torch.device) -> dict[str, Any]:
    """Clustering of ``excerpts`` excerpts of ``size`` ("demo" | "paper"): torch on ``device`` vs
    scikit-learn on the CPU, ``repeats`` passes (the embeddings of each batch are made untimed)."""
    s = SIZES[size]
    data = GeneratedExcerpts(K, s["seconds"], seed=0, split="test", length=excerpts)
    stft = STFT()
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    recs: dict[str, list[dict[str, float]]] = {"sklearn": [], "torch": []}
    means: dict[str, list[np.ndarray]] = {"sklearn": [], "torch": []}
    inertia: dict[str, list[np.ndarray]] = {"sklearn": [], "torch": []}
    for r in range(repeats):
        tot = {k: {"wall_s": 0.0, "cpu_s": 0.0} for k in recs}
        for start in range(0, excerpts, s["batch"]):
            b = synthetic_batch(data, start, min(s["batch"], excerpts - start), s["dim"], stft)
            seeds = [(0, start, i) for i in range(len(b["mix"]))]
            mag = b["spec"].abs()
            emb_dev, mag_dev = b["emb"].to(device), mag.to(device)
            order = ["sklearn", "torch"] if r % 2 == 0 else ["torch", "sklearn"]
            for name in order:
                sync()
                c0, t0 = time.process_time(), time.perf_counter()
                if name == "torch":
                    labels = batch_kmeans_labels(emb_dev, mag_dev, K, seeds).cpu()
                else:
                    labels = torch.stack([sklearn_labels(b["emb"][i], mag[i], K, seeds[i]) for i in range(len(mag))])
                sync()
                tot[name]["wall_s"] += time.perf_counter() - t0
                tot[name]["cpu_s"] += time.process_time() - c0
                if r == 0:
                    means[name].append(_scores(stft, b, labels))
                    inertia[name].append(partition_inertia(b["emb"], mag, labels))
        for k in recs:
            recs[k].append(tot[k])
    from transfersep.bench.measure import ratio, summary

    sisdr = {k: float(np.nanmean(np.concatenate(v))) for k, v in means.items()}
    rel = np.concatenate(inertia["torch"]) / np.concatenate(inertia["sklearn"]) - 1.0
    return {
        "size": size,
        **s,
        "excerpts": excerpts,
        "variants": {k: {"wall_s": summary(r), "cpu_s": summary(r, "cpu_s"), "records": r} for k, r in recs.items()},
        "ratios": {"sklearn/torch": ratio(recs["sklearn"], recs["torch"])},
        "sisdr": sisdr,
        "sisdr_diff_db": sisdr["torch"] - sisdr["sklearn"],
        # k-means finds local optima: where the two differ, which found the better one (> 0.1 %)
        "inertia": {
            "torch_lower": int((rel < -1e-3).sum()),
            "torch_higher": int((rel > 1e-3).sum()),
            "median_rel_diff": float(np.median(rel)),
        },
    }


def bench_probe_run(excerpts: int, protocol: int, repeats: int, device: torch.device) -> dict[str, Any]:
    """The whole zero-shot probe of paper-size excerpts (random paper-size ChimeraNet on ``device``:
    embeddings, k-means, masks, matching, SI-SDR through ``evaluation.score_excerpts``), ``excerpts``
    timed and the ``protocol``-excerpt probe extrapolated."""
    from transfersep.bench.measure import interleaved, summary
    from transfersep.bench.sizes import model_size
    from transfersep.evaluation.evaluate import score_excerpts
    from transfersep.model.clusters import ClusterSeparator
    from transfersep.model.system import SeparationSystem

    data = GeneratedExcerpts(K, 10.0, seed=0, split="test", length=excerpts)
    items = [data[i] for i in range(excerpts)]  # generated once, outside the timing
    system = SeparationSystem(model_size("paper"), "whole", ["a", "b", "c"]).to(device).eval()
    sep = ClusterSeparator(system.model, system.stft, K)

    def run():
        score_excerpts(sep, items, K, batch_size=SIZES["paper"]["batch"], device=device, align=match_to_references)

    score_excerpts(sep, items[:2], K, device=device, align=match_to_references)  # warm-up: allocator, kernels
    recs = interleaved({"torch": run}, repeats, device, warmup=0)["torch"]
    wall = summary(recs)
    return {
        "excerpts": excerpts,
        "protocol": protocol,
        "seconds": 10.0,
        "wall_s": wall,
        "cpu_s": summary(recs, "cpu_s"),
        "records": recs,
        "protocol_s": wall["median"] / excerpts * protocol,
    }
