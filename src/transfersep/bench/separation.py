"""Separation speed as a real-time factor: ``python -m transfersep.bench.separation [--seconds 60]``.

Times the whole ``separate_file`` path (read a 44.1 kHz mono WAV, resample, chunked batched
network, overlap-add, resample back, write one file per source) with the paper-size ChimeraNet
(``conf/model/chimera.yaml``: 4 x 500 BLSTM, D = 20; 4 sources; random weights: the speed does not
depend on their values).
RTF = audio seconds / wall seconds, so 10 means ten times faster than real time.

On a shared machine the wall-clock RTF moves with other load; the process CPU time is reported
beside it (``cpu_rtf`` = audio seconds / CPU seconds of this process, all threads), which is what
one dedicated core would give, the load average before and after, and a yardstick (a plain fp32
forward of four 2-s chunks on one thread, about 12x on an idle core here) timed beside each
repeat, so that runs on a loaded machine can be compared by ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch

from transfersep.audio import STFT, STFTConfig
from transfersep.bench.sizes import MODEL_CONFIGS, model_size
from transfersep.model import ChimeraConfig, ChimeraNet
from transfersep.model.package import LoadedModel

SOURCES = ["bass", "drums", "other", "vocals"]


def random_model(model_cfg: str = "paper", n_sources: int = 4, device: str = "cpu", seed: int = 0) -> LoadedModel:
    size = model_size(model_cfg)  # before seeding: an unknown name fails first
    torch.manual_seed(seed)
    net = ChimeraNet(ChimeraConfig(**size, n_sources=n_sources)).eval()
    names = (SOURCES + [f"s{i}" for i in range(n_sources)])[:n_sources]
    meta = {"model": net.cfg.to_dict(), "note": f"random {model_cfg} model for timing"}
    return LoadedModel(net, STFT(STFTConfig()), names, meta, Path("<random>")).to(device)


def test_recording(path: Path, seconds: float, sr: int = 44_100, seed: int = 0) -> Path:
    """A mono recording: two tones, a pulse train and noise (content does not change the timing)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = 0.2 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 1760 * t) * (np.sin(2 * np.pi * 2 * t) > 0)
    x += 0.02 * rng.standard_normal(len(t))
    sf.write(path, x.astype(np.float32), sr, subtype="PCM_16")
    return path


def reference_forward_rtf(net: ChimeraNet, repeats: int = 3) -> float:
    """RTF of the yardstick: one plain forward (both heads, fp32, one thread) of the
    paper-size model over a batch of four 2-s chunks (about 12x on an idle CPU core).
    Timed beside the separation so that runs on a loaded machine can be compared by ratio."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    x = torch.rand(4, STFTConfig().n_frames(32_000), STFTConfig().n_bins) + 0.01
    try:
        with torch.inference_mode():
            net(x)
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                net(x)
                times.append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(before)
    return 8.0 / statistics.median(times)


def bench_separation(
    model_cfg: str = "paper",
    seconds: float = 60.0,
    device: str = "cpu",
    repeats: int = 3,
    chunk_seconds: float | None = None,
    overlap_seconds: float | None = None,
    batch_size: int | None = None,
    threads: int | None = None,
    precision: str = "auto",
) -> dict[str, Any]:
    """Real-time factor of ``separate_file`` on a mono ``seconds``-long recording.

    Returns {"rtf_median", "rtf_min", "rtf_max", "cpu_rtf_median", "wall_s", ...settings and
    conditions}. ``threads``: CPU worker threads as ``transfersep separate --threads`` (None: its default);
    ``precision`` as ``transfersep separate --precision`` (auto: int8 on CPU, its default).
    """
    from transfersep.inference import runner as inf
    from transfersep.inference import separate as sep

    chunk_seconds = sep.DEFAULT_CHUNK_SECONDS if chunk_seconds is None else chunk_seconds
    overlap_seconds = sep.DEFAULT_OVERLAP_SECONDS if overlap_seconds is None else overlap_seconds
    dev = inf.resolve_device(device)
    t0 = time.perf_counter()
    lm = inf.prepare_model(random_model(model_cfg), dev, precision)
    prepare_s = time.perf_counter() - t0
    threads = threads or inf.default_threads()
    kw = dict(
        chunk_seconds=chunk_seconds,
        overlap_seconds=overlap_seconds,
        progress=False,
        batch_size=batch_size,
        threads=threads,
    )
    walls, cpus, refs = [], [], []
    ref_net = random_model(model_cfg).net
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="transfersep-bench-") as d:
        rec = test_recording(Path(d) / "bench.wav", seconds)
        warm = test_recording(Path(d) / "warmup.wav", min(seconds, 2 * chunk_seconds))
        sep.separate_file(warm, lm, Path(d) / "out", **kw)  # first-call costs (allocator, kernels)
        for _ in range(repeats):
            if dev.type == "cuda":
                torch.cuda.synchronize()
            c0, t0 = time.process_time(), time.perf_counter()
            sep.separate_file(rec, lm, Path(d) / "out", **kw)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
            refs.append(reference_forward_rtf(ref_net))
    rtf = sorted(seconds / w for w in walls)
    return {
        "model": model_cfg,
        "audio_seconds": seconds,
        "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev)
        if dev.type == "cuda"
        else platform.processor() or platform.machine(),
        "threads": threads if dev.type == "cpu" else None,
        "cpu_count": os.cpu_count(),
        "chunk_seconds": chunk_seconds,
        "overlap_seconds": overlap_seconds,
        "batch_size": batch_size
        or (inf.DEFAULT_BATCH["cpu"] * threads if dev.type == "cpu" else inf.DEFAULT_BATCH["cuda"]),
        "precision": lm.meta.get("inference_precision", "fp32"),
        "prepare_s": round(prepare_s, 3),
        "repeats": repeats,
        "rtf_median": statistics.median(rtf),
        "rtf_min": rtf[0],
        "rtf_max": rtf[-1],
        "cpu_rtf_median": statistics.median(seconds / c for c in cpus),
        "reference_rtf_median": statistics.median(refs),
        "speedup_vs_reference": statistics.median(rtf) / statistics.median(refs),
        "wall_s": walls,
        "cpu_s": cpus,
        "loadavg_before": [round(v, 2) for v in load_before],
        "loadavg_after": [round(v, 2) for v in os.getloadavg()],
        "torch": torch.__version__,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="paper", choices=sorted(MODEL_CONFIGS))
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--chunk-seconds", type=float, default=None)
    p.add_argument("--overlap-seconds", type=float, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "int8"])
    a = p.parse_args(argv)
    r = bench_separation(
        a.model,
        a.seconds,
        a.device,
        a.repeats,
        a.chunk_seconds,
        a.overlap_seconds,
        a.batch_size,
        a.threads,
        a.precision,
    )
    print(json.dumps(r, indent=2))
    print(
        f"separation, {r['model']} model, {r['device']} {r['precision']} ({r['threads']} threads): "
        f"{r['rtf_median']:.1f}x real time (min {r['rtf_min']:.1f}, max {r['rtf_max']:.1f}; "
        f"{r['cpu_rtf_median']:.1f}x per CPU-second); yardstick (plain fp32 forward, 4x2 s, 1 thread) "
        f"{r['reference_rtf_median']:.1f}x beside it: {r['speedup_vs_reference']:.1f}x the yardstick"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
