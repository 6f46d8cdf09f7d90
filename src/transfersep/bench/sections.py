"""The benchmark sections besides the training step: DC loss, SI-SDR, evaluation, loader, separation.

Each returns a JSON-able dict; ``transfersep.bench.worker`` runs one section per process.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from transfersep.bench.measure import interleaved, ratio, summary
from transfersep.model import losses

PAPER_DC = {"batch": 24, "frames": 1251, "bins": 257, "dim": 20, "sources": 3}  # 10 s at hop 128


def bench_dc(repeats: int, device: torch.device, size: dict[str, int] | None = None) -> dict[str, Any]:
    """DC loss forward + backward: naive low-rank autograd form vs the fast Function (fp32 and bf16 V).

    Inputs as in training: unit-norm sigmoid embeddings, labels of random source magnitudes,
    mixture-magnitude weights; "extra" memory is everything the call allocates beyond them.
    """
    s = {**PAPER_DC, **(size or {})}
    b, t, f, d, c = s["batch"], s["frames"], s["bins"], s["dim"], s["sources"]
    g = torch.Generator().manual_seed(0)
    v32 = torch.rand(b, t, f, d, generator=g).to(device)
    v32.sub_(0.5).mul_(8).sigmoid_().div_(v32.norm(dim=-1, keepdim=True))
    src = torch.rand(b, c, t, f, generator=g).to(device)
    labels, weights = losses.ideal_assignment(src), src.sum(1)
    del src
    v16 = v32.to(torch.bfloat16)
    leaves = {"naive": v32.clone().requires_grad_(), "fast": v32.requires_grad_(), "fast-bf16": v16.requires_grad_()}
    fns = {
        "naive": losses.deep_clustering_loss_reference,
        "fast": losses.deep_clustering_loss,
        "fast-bf16": losses.deep_clustering_loss,
    }
    values: dict[str, float] = {}

    def run(name: str):
        leaf = leaves[name]
        leaf.grad = None
        loss = fns[name](leaf, labels, c, weights)
        loss.backward()
        values[name] = loss.item()
        leaf.grad = None  # the gradient is part of the call's memory, not kept across repeats

    recs = interleaved({k: (lambda k=k: run(k)) for k in fns}, repeats, device, warmup=1)
    ref = values["naive"]
    return {
        "size": s,
        "variants": {
            k: {
                "wall_s": summary(r),
                "cpu_s": summary(r, "cpu_s"),
                "extra_mib": summary(r, "extra_mib"),
                "mem_method": r[0]["mem_method"],
                "loss": values[k],
                "rel_diff_vs_naive": abs(values[k] - ref) / abs(ref),
                "records": r,
            }
            for k, r in recs.items()
        },
        "ratios": {
            "naive/fast": ratio(recs["naive"], recs["fast"]),
            "naive/fast-bf16": ratio(recs["naive"], recs["fast-bf16"]),
            "fast/fast-bf16": ratio(recs["fast"], recs["fast-bf16"]),
        },
        "memory_ratio_fast/naive": summary(recs["fast"], "extra_mib").get("median", 0)
        / max(summary(recs["naive"], "extra_mib").get("median", 0), 1e-9),
    }


def bench_compile(repeats: int, device: torch.device, batch: int = 4, frames: int = 251) -> dict[str, Any]:
    """Embedding head + activation + DC loss, forward + backward (the part of the step that
    ``torch.compile`` can fuse; the BLSTM stays an opaque oneDNN/cuDNN call): the plain code,
    the plain code under ``torch.compile`` (default inductor) and the fast paths."""
    import time

    import torch.nn.functional as nnf

    from transfersep.model.fast import sigmoid_unit_norm

    f, d, c, h = 257, 20, 3, 1000
    torch.manual_seed(0)
    head = torch.nn.Linear(h, f * d).to(device)
    feats = torch.randn(batch, frames, h, device=device, requires_grad=True)
    src = torch.rand(batch, c, frames, f, device=device)
    w, lab = src.sum(1), losses.ideal_assignment(src)

    def plain():
        emb = nnf.normalize(torch.sigmoid(head(feats)).view(batch, frames, f, d), dim=-1)
        losses.deep_clustering_loss_reference(emb, lab, c, w).backward()

    def fast():
        losses.deep_clustering_loss(sigmoid_unit_norm(head(feats).view(batch, frames, f, d)), lab, c, w).backward()

    compiled_fwd = torch.compile(
        lambda: losses.deep_clustering_loss_reference(
            nnf.normalize(torch.sigmoid(head(feats)).view(batch, frames, f, d), dim=-1), lab, c, w
        )
    )
    t0 = time.perf_counter()
    compiled_fwd().backward()
    compile_s = time.perf_counter() - t0
    recs = interleaved(
        {"plain": plain, "compiled": lambda: compiled_fwd().backward(), "fast": fast}, repeats, device, warmup=1
    )
    return {
        "size": {"batch": batch, "frames": frames, "bins": f, "dim": d, "sources": c, "hidden": h},
        "compile_s": compile_s,
        "variants": {
            k: {"wall_s": summary(r), "cpu_s": summary(r, "cpu_s"), "extra_mib": summary(r, "extra_mib"), "records": r}
            for k, r in recs.items()
        },
        "ratios": {
            "plain/compiled": ratio(recs["plain"], recs["compiled"]),
            "plain/fast": ratio(recs["plain"], recs["fast"]),
        },
    }


def bench_sisdr(
    repeats: int, device: torch.device, pairs: int = 1000, seconds: float = 10.0, chunk: int = 100
) -> dict[str, Any]:
    """SI-SDR of ``pairs`` (estimate, reference) pairs of ``seconds``-long signals, ``chunk`` pairs per call.

    "project" is ``transfersep.evaluation.sisdr.sisdr`` (float64, mean removed, unit RMS), "torchmetrics"
    calls ``scale_invariant_signal_distortion_ratio(zero_mean=True)`` on the float32 signals.
    """
    from torchmetrics.functional.audio import scale_invariant_signal_distortion_ratio as tm_sisdr

    from transfersep.evaluation.sisdr import sisdr as project_sisdr

    n = int(seconds * 16_000)
    g = torch.Generator().manual_seed(0)
    ref = torch.randn(pairs, n, generator=g)
    est = (ref + 0.3 * torch.randn(pairs, n, generator=g)).to(device)
    ref = ref.to(device)
    fns = {"project": project_sisdr, "torchmetrics": lambda e, r: tm_sisdr(e, r, zero_mean=True)}
    out_vals: dict[str, torch.Tensor] = {}

    def run(name: str):
        out_vals[name] = torch.cat(
            [fns[name](est[i : i + chunk], ref[i : i + chunk]).double().cpu() for i in range(0, pairs, chunk)]
        )

    recs = interleaved({k: (lambda k=k: run(k)) for k in fns}, repeats, device, warmup=1)
    return {
        "pairs": pairs,
        "seconds": seconds,
        "chunk": chunk,
        "variants": {
            k: {"wall_s": summary(r), "cpu_s": summary(r, "cpu_s"), "extra_mib": summary(r, "extra_mib"), "records": r}
            for k, r in recs.items()
        },
        "max_abs_diff_db": (out_vals["project"] - out_vals["torchmetrics"]).abs().max().item(),
        "ratios": {"torchmetrics/project": ratio(recs["torchmetrics"], recs["project"])},
    }


def bench_evaluation(
    repeats: int,
    device: torch.device,
    excerpts: int,
    protocol: int = 1000,
    seconds: float = 10.0,
    batch_size: int = 8,
    plain: bool = True,
) -> dict[str, Any]:
    """The test-set evaluation of one run (``transfersep.evaluation.evaluate.score_excerpts``): paper-size
    ChimeraNet, 3 sources, ``excerpts`` 10-s excerpts timed and the ``protocol``-excerpt evaluation
    extrapolated linearly (on a GPU, ``excerpts`` = ``protocol``).

    Variants: "fast" is the tool's evaluation (``SeparationSystem.separate``: the mask head only,
    ``evaluation.batches.inference_batch`` excerpts a pass, bf16 heads on a GPU); "plain" the path it
    replaced (``batch_size`` excerpts a pass, the whole ChimeraNet forward with both heads, fp32).
    Beside the times: the FLOP floor of each (``bench.flops``) at the cores' fp32 peak.
    The weights are random: the time does not depend on them, nor on the audio (random too).
    """
    from transfersep.bench.flops import cpu_fp32_peak, floor
    from transfersep.bench.sizes import model_size
    from transfersep.evaluation.evaluate import score_excerpts
    from transfersep.model.system import SeparationSystem

    n = int(seconds * 16_000)
    g = torch.Generator().manual_seed(0)
    items = [{"sources": s, "mix": s.sum(0)} for s in 0.1 * torch.randn(excerpts, 3, n, generator=g)]
    system = SeparationSystem(model_size("paper"), "whole", ["a", "b", "c"]).to(device).eval()
    net, stft = system.model, system.stft

    def plain_separate(mix: torch.Tensor) -> torch.Tensor:
        spec = stft(mix.float())
        _, masks = net(spec.abs())  # both heads, as the evaluation computed them before
        return stft.inverse(masks * spec.unsqueeze(1), mix.shape[-1])

    out: dict[str, Any] = {}

    def run(name: str):
        if name == "plain":
            sc = score_excerpts(plain_separate, items, 3, batch_size=batch_size, device=device, bf16=False)[0]
        else:
            sc = score_excerpts(system.separate, items, 3, device=device)[0]
        out[name] = sc

    variants = {"plain": lambda: run("plain"), "fast": lambda: run("fast")} if plain else {"fast": lambda: run("fast")}
    # warm-up on one batch's worth (allocator, kernels), not on the whole set: 1000 excerpts on a GPU
    score_excerpts(system.separate, items[:batch_size], 3, device=device)
    recs = interleaved(variants, repeats, device, warmup=0)
    audio_s = protocol * seconds
    peak = cpu_fp32_peak(torch.get_num_threads()) if device.type == "cpu" else None
    gflops = peak["gflops"] if peak else None
    floors = {"plain": floor(audio_s, ("embedding", "mask"), gflops), "fast": floor(audio_s, ("mask",), gflops)}
    res: dict[str, Any] = {
        "excerpts": excerpts,
        "protocol": protocol,
        "seconds": seconds,
        "batch_size": {"plain": batch_size, "fast": "auto"},
        "peak": peak,
        "variants": {},
        "ratios": {"plain/fast": ratio(recs["plain"], recs["fast"])} if plain else {},
    }
    for k, r in recs.items():
        wall = summary(r)
        prot = wall["median"] / excerpts * protocol
        res["variants"][k] = {
            "wall_s": wall,
            "cpu_s": summary(r, "cpu_s"),
            "records": r,
            "protocol_s": prot,
            "real_time_factor": excerpts * seconds / wall["median"],
            "achieved_gflops": floors[k]["gflop"] / prot,
            "floor": floors[k],
            "over_floor": prot / floors[k]["floor_s"] if floors[k]["floor_s"] else None,
        }
    if plain:  # the two paths' scores (random weights and audio: near 0 dB, but every step counts)
        res["max_abs_diff_db"] = float(np.nanmax(np.abs(out["plain"] - out["fast"])))
    fast = res["variants"]["fast"]
    # the figures earlier code and tests read at the top level: the tool's evaluation
    res.update({k: fast[k] for k in ("wall_s", "cpu_s", "records", "protocol_s", "real_time_factor")})
    res["per_excerpt_s"] = fast["wall_s"]["median"] / excerpts
    return res


def bench_loader_section(quick: bool) -> dict[str, Any]:
    from transfersep.bench.data import bench_bootstrap, bench_loader  # imported here: they pull in the loaders

    kw = dict(samples=8, repeats=2, n_tracks=2, track_seconds=20.0) if quick else {}
    return {"per_worker_samples_per_s": bench_loader(**kw), "bootstrap": bench_bootstrap(**kw), "kwargs": kw}


def bench_separation_section(quick: bool, device: torch.device) -> dict[str, Any]:
    from transfersep.bench.separation import bench_separation  # imported here: it pulls in inference

    kw = dict(
        model_cfg="paper",
        seconds=20.0 if quick else 60.0,
        repeats=2 if quick else 3,
        device=device.type,
        threads=torch.get_num_threads(),
    )
    return {"result": bench_separation(**kw), "kwargs": kw}
