"""The data-parallel training step on every GPU present (``trainer=ddp``): one process per device,
each running the tool's step on its own batch (``data.batch_size`` per GPU), the gradients averaged
across processes by one all-reduce a step as DDP does (NCCL on GPUs, gloo on the CPU), then
AutoClip and Adam. DDP overlaps that all-reduce with the backward pass in buckets; here it follows
the backward, so the time is an upper bound of Lightning's DDP step.
"""

from __future__ import annotations

import os
import socket
import statistics
import time
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from transfersep.bench.step import CONFIGS, Variant, make_batch, make_step


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank: int, world: int, port: int, spec: dict[str, Any], queue) -> None:
    cuda = spec["device"] == "cuda"
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    if cuda:
        torch.cuda.set_device(rank)
    dist.init_process_group("nccl" if cuda else "gloo", rank=rank, world_size=world)
    device = torch.device("cuda", rank) if cuda else torch.device("cpu")
    cfg = CONFIGS[spec["config"]]
    step = make_step(Variant(**spec["variant"]), spec["phase"], cfg["sources"], device, seed=0)
    system = step.system
    params = system.trainable_parameters()
    opt = system.configure_optimizers()["optimizer"]
    batch = make_batch(cfg["batch"], cfg["seconds"], cfg["sources"], device, seed=rank)
    amp = spec["variant"].get("precision") == "bf16"

    def one() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = system.compute_losses(batch)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        flat = torch.cat([p.grad.reshape(-1) for p in params])
        dist.all_reduce(flat)
        flat /= world
        torch.nn.utils.vector_to_parameters(flat, [p.grad for p in params])
        system.autoclip(params)
        opt.step()

    times = []
    for r in range(spec["warmup"] + spec["repeats"]):
        if cuda:
            torch.cuda.synchronize(device)
        dist.barrier()
        t0 = time.perf_counter()
        one()
        if cuda:
            torch.cuda.synchronize(device)
        dist.barrier()  # a step ends when the slowest rank is done
        if r >= spec["warmup"]:
            times.append(time.perf_counter() - t0)
    if rank == 0:
        queue.put(times)
    dist.destroy_process_group()


def bench_ddp(
    device: str,
    config: str = "paper",
    phase: str = "pretrain",
    variant: dict | None = None,
    repeats: int = 5,
    warmup: int = 2,
    world: int | None = None,
) -> dict[str, Any]:
    """Median step time of ``world`` processes (default: every GPU, or 2 CPU processes) and the
    samples/s it gives: {"world", "step_s", "samples_per_s", "records", ...}."""
    world = world or (torch.cuda.device_count() if device == "cuda" else 2)
    spec = {
        "device": device,
        "config": config,
        "phase": phase,
        "variant": variant or {"name": "fast-bf16", "fast": True, "precision": "bf16" if device == "cuda" else "fp32"},
        "repeats": repeats,
        "warmup": warmup,
    }
    ctx = mp.get_context("spawn")
    queue = ctx.SimpleQueue()
    mp.start_processes(_rank, args=(world, _free_port(), spec, queue), nprocs=world, start_method="spawn")
    times = queue.get()
    step_s = statistics.median(times)
    per_rank = CONFIGS[config]["batch"]
    return {
        **spec,
        "world": world,
        "batch_per_rank": per_rank,
        "step_s": {"median": step_s, "min": min(times), "max": max(times), "n": len(times)},
        "samples_per_s": world * per_rank / step_s,
        "records": [{"wall_s": t} for t in times],
    }
