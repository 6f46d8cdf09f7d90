"""Training-step benchmark: the tool's step against the plain version, side by side.

A step is what Lightning runs per batch minus its bookkeeping: losses, ``zero_grad``, backward,
AutoClip, optimizer step. The tool's step uses ``SeparationSystem.compute_losses`` and the
optimizer of ``configure_optimizers``; the plain step ``bench.plain.plain_compute_losses`` with
``torch.optim.Adam`` defaults; both with AutoClip p = 10 and identical initial weights.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from transfersep.bench.measure import interleaved, ratio, summary
from transfersep.bench.plain import plain_compute_losses
from transfersep.bench.sizes import model_size
from transfersep.model.system import SeparationSystem

CONFIGS = {  # batch x seconds, sources
    "paper": {"batch": 24, "seconds": 10.0, "sources": 3},
    "small": {"batch": 4, "seconds": 2.0, "sources": 3},
}


def study_iterations() -> tuple[dict[str, int], int]:
    """Optimizer steps of the whole study per phase (``pretrain``, ``whole``, ``mask``) and the
    number of training runs, for the study-time estimate: every run of the grid
    (``sweeps/grid.yaml``) at the budgets of ``experiment=paper`` (the paper's grid: 12 pretrainings of
    10 000, 72 fine-tunes of 2 000 half whole, half mask, 3 baselines of 12 000 = 87 runs,
    300 000 steps; the whole grid adds the self-supervised pretrainings and the pretraining-length
    axis, each step costed as a DC step). The zero-shot probes train nothing."""
    from transfersep.run.config import compose
    from transfersep.run.plan import phase_of, steps_of
    from transfersep.study.grid import grid_points

    budget = compose(["experiment=paper"]).budget
    out: dict[str, int] = {}
    runs = 0
    for gp in grid_points():
        steps = int(steps_of(gp.stage, budget))
        if steps:
            phase = phase_of(gp.stage, gp.finetune)
            out[phase] = out.get(phase, 0) + steps
            runs += 1
    return out, runs


def study_counts() -> tuple[int, int]:
    """(evaluations, zero-shot probes) of the whole study: every fine-tune and baseline of the grid ends
    with an evaluation of the test excerpts (pretraining runs are not evaluated); every probe is one."""
    from transfersep.study.grid import grid_points

    stages = [gp.stage for gp in grid_points()]
    return sum(s in ("finetune", "baseline") for s in stages), stages.count("zeroshot")


@dataclass
class Variant:
    name: str
    fast: bool
    precision: str = "fp32"  # fp32 | bf16 (autocast, as Lightning's precision=bf16-mixed)


def make_batch(
    batch: int, seconds: float, sources: int, device: torch.device, seed: int = 0
) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    src = 0.1 * torch.randn(batch, sources, int(seconds * 16_000), generator=g)
    return {"mix": src.sum(1).to(device), "sources": src.to(device)}


def make_step(variant: Variant, phase: str, sources: int, device: torch.device, seed: int = 0) -> Callable[[dict], Any]:
    torch.manual_seed(seed)  # same initial weights for every variant
    model = dict(model_size("paper"), fast_paths=variant.fast, cpu_parallel_directions=variant.fast)
    system = SeparationSystem(model=model, phase=phase, source_names=[f"s{i}" for i in range(sources)]).to(device)
    if variant.fast:
        opt = system.configure_optimizers()["optimizer"]
        compute = system.compute_losses
    else:
        opt = torch.optim.Adam(system.trainable_parameters(), lr=1e-3)
        compute = lambda batch: plain_compute_losses(system, batch)  # noqa: E731
    amp = torch.autocast(device.type, dtype=torch.bfloat16) if variant.precision == "bf16" else contextlib.nullcontext()

    def step(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        with amp:
            out = compute(batch)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        system.autoclip(system.trainable_parameters())
        opt.step()
        return out

    step.system = system  # type: ignore[attr-defined]
    return step


def bench_step(
    config: str, phase: str, variants: list[Variant], repeats: int, device: torch.device, warmup: int = 1
) -> dict[str, Any]:
    """Interleaved repeats of a training step per variant; ratios of each variant to the first."""
    cfg = CONFIGS[config]
    batch = make_batch(cfg["batch"], cfg["seconds"], cfg["sources"], device)
    steps = {v.name: make_step(v, phase, cfg["sources"], device) for v in variants}
    recs = interleaved({k: (lambda f=f: f(batch)) for k, f in steps.items()}, repeats, device, warmup)
    base = variants[0].name
    return {
        "config": config,
        "phase": phase,
        **cfg,
        "model": model_size("paper"),
        "variants": {
            k: {
                "wall_s": summary(r),
                "cpu_s": summary(r, "cpu_s"),
                "extra_mib": summary(r, "extra_mib"),
                "mem_method": r[0]["mem_method"],
                "records": r,
            }
            for k, r in recs.items()
        },
        "ratios": {f"{base}/{k}": ratio(recs[base], recs[k]) for k in recs if k != base},
    }
