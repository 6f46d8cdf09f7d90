"""Runs one benchmark section in its own process: ``python -m transfersep.bench.worker '<json spec>'``.

One process per section keeps sections from sharing allocator state or peak-memory marks. The
result is printed as one JSON line after ``RESULT_MARK``.
"""

from __future__ import annotations

import json
import sys

import torch

from transfersep.bench import sections, step
from transfersep.bench.measure import conditions

RESULT_MARK = "@@transfersep-bench-result@@"


def run(spec: dict) -> dict:
    torch.set_num_threads(int(spec["threads"]))
    device = torch.device(spec["device"])
    kind = spec["kind"]
    if kind == "step":
        variants = [step.Variant(**v) for v in spec["variants"]]
        res = step.bench_step(spec["config"], spec["phase"], variants, spec["repeats"], device)
    elif kind == "dc":
        res = sections.bench_dc(spec["repeats"], device, spec.get("size"))
    elif kind == "compile":
        res = sections.bench_compile(spec["repeats"], device)
    elif kind == "sisdr":
        res = sections.bench_sisdr(spec["repeats"], device, spec["pairs"])
    elif kind == "evaluation":
        res = sections.bench_evaluation(spec["repeats"], device, spec["excerpts"], plain=spec.get("plain", True))
    elif kind == "probe":
        from transfersep.bench.probe import bench_probe

        res = bench_probe(spec["size"], spec["excerpts"], spec["repeats"], device)
    elif kind == "probe_run":
        from transfersep.bench.probe import bench_probe_run

        res = bench_probe_run(spec["excerpts"], spec["protocol"], spec["repeats"], device)
    elif kind == "ddp":
        from transfersep.bench.ddp import bench_ddp

        res = bench_ddp(spec["device"], repeats=spec["repeats"])
    elif kind == "loader_workers":
        from transfersep.bench.data import bench_loader_workers

        res = bench_loader_workers(spec["workers"], samples=spec["samples"])
    elif kind == "loader":
        res = sections.bench_loader_section(spec["quick"])
    elif kind == "separation":
        res = sections.bench_separation_section(spec["quick"], device)
    else:
        raise ValueError(f"unknown benchmark section kind {kind!r}")
    return {**res, "conditions_after": conditions(device)}


def main() -> None:
    spec = json.loads(sys.argv[1])
    print(RESULT_MARK + json.dumps(run(spec), default=float), flush=True)


if __name__ == "__main__":
    main()
