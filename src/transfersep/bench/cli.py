"""``python -m transfersep.bench [--quick] [--out bench/results.json] [--only ids] [--threads N]``.

Runs each section in its own worker process (``transfersep.bench.worker``), prints a Markdown
table as results come in and at the end, and writes every figure with its per-repeat records,
the conditions (machine, threads, load) and the command that reproduces it to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

import torch

from transfersep.bench.measure import conditions
from transfersep.bench.report import render_table, study_estimate
from transfersep.bench.worker import RESULT_MARK
from transfersep.files import atomic_write_json

PLAIN = {"name": "plain", "fast": False}
FAST = {"name": "fast", "fast": True}
FAST_BF16 = {"name": "fast-bf16", "fast": True, "precision": "bf16"}


def plan(quick: bool, device: str, threads: int) -> list[dict[str, Any]]:
    """The sections of a run, in order: id, what the worker runs, and how many repeats."""
    gpu = device == "cuda"
    base = {"device": device, "threads": threads, "quick": quick}
    steps: list[tuple] = []  # (config, phase, repeats, variants[, threads])
    if quick:
        steps.append(("small", "pretrain", 3, [PLAIN, FAST]))
        if gpu:
            steps.append(("paper", "pretrain", 3, [PLAIN, FAST, FAST_BF16]))
    else:
        # bf16 autocast on CPU: measured on the small config to show whether it pays here
        steps += [
            ("small", "pretrain", 5, [PLAIN, FAST, FAST_BF16]),
            ("small", "whole", 5, [PLAIN, FAST]),
            ("small", "mask", 5, [PLAIN, FAST]),
        ]
        reps = 5 if gpu else 3
        paper = [PLAIN, FAST, FAST_BF16] if gpu else [PLAIN, FAST]
        steps += [
            ("paper", "pretrain", reps, paper),
            ("paper", "whole", reps if gpu else 2, paper),
            ("paper", "mask", reps if gpu else 2, paper),
        ]
        if not gpu:  # one intra-op thread: what the fast paths save without the thread split
            steps.append(("small", "pretrain", 5, [PLAIN, FAST], 1))
    out = [
        {
            **base,
            "id": f"step-{c}-{p}" + (f"-{t[0]}thread" if t else ""),
            "kind": "step",
            "config": c,
            "phase": p,
            "repeats": r,
            "variants": v,
            **({"threads": t[0]} if t else {}),
        }
        for c, p, r, v, *t in steps
    ]
    out.append(
        {
            "id": "dc",
            "kind": "dc",
            "repeats": 3 if quick else 5,
            "size": {"batch": 4} if quick and not gpu else None,
            **base,
        }
    )
    if not quick:  # torch.compile of the part it can fuse (heads + DC), against plain and fast
        out.append({"id": "compile", "kind": "compile", "repeats": 5, **base})
    out.append({"id": "sisdr", "kind": "sisdr", "repeats": 3, "pairs": 100 if quick else 1000, **base})
    out.append(
        {
            "id": "evaluation",
            "kind": "evaluation",
            "repeats": 2 if quick else 3,
            "excerpts": 1000 if gpu else (8 if quick else 48),
            **base,
        }
    )
    # the probe's clustering, torch vs scikit-learn, at the demo's and the paper's sizes; then the whole probe
    for size, n in (("demo", 16 if quick else 100), ("paper", 8 if quick else 100)):
        out.append(
            {"id": f"probe-{size}", "kind": "probe", "size": size, "excerpts": n, "repeats": 1 if quick else 2, **base}
        )
    out.append(
        {
            "id": "probe-run",
            "kind": "probe_run",
            "excerpts": 1000 if gpu else (2 if quick else 24),
            "protocol": 1000,
            "repeats": 1 if quick or gpu else 2,
            **base,
        }
    )
    out.append({"id": "loader", "kind": "loader", **base})
    out.append({"id": "separation", "kind": "separation", **base})
    return out


def gpu_check_plan(threads: int) -> list[dict[str, Any]]:
    """``--gpu-check``: what one GPU should show in under 5 minutes (scripts/gpu_check.sh): the paper
    step in fp32 and bf16, the DDP step on every GPU present, the loader with the configured workers,
    the probe and the evaluation of 1000 paper excerpts."""
    from omegaconf import OmegaConf

    from transfersep.run.config import conf_dir

    workers = int(OmegaConf.load(conf_dir() / "train.yaml").data.num_workers)
    base = {"device": "cuda", "threads": threads, "quick": False, "gpu_check": True}
    return [
        {**base, "id": "step-paper-pretrain", "kind": "step", "config": "paper", "phase": "pretrain", "repeats": 5}
        | {"variants": [FAST, FAST_BF16]},
        {**base, "id": "ddp", "kind": "ddp", "repeats": 5},
        {**base, "id": "loader-workers", "kind": "loader_workers", "workers": workers, "samples": 192},
        {**base, "id": "probe-run", "kind": "probe_run", "excerpts": 1000, "protocol": 1000, "repeats": 1},
        {**base, "id": "evaluation", "kind": "evaluation", "excerpts": 1000, "repeats": 1, "plain": False},
    ]


def command_for(section: dict[str, Any]) -> str:
    if section.get("gpu_check"):
        return f"python -m transfersep.bench --gpu-check --only {section['id']}"
    cmd = f"python -m transfersep.bench --only {section['id']} --threads {section['threads']}"
    cmd += f" --device {section['device']}" + (" --quick" if section["quick"] else "")
    return cmd


def run_section(section: dict[str, Any]) -> dict[str, Any]:
    t0 = time.perf_counter()
    # the worker's stderr (progress, warnings, a traceback) goes straight to ours
    proc = subprocess.run(
        [sys.executable, "-m", "transfersep.bench.worker", json.dumps(section)], stdout=subprocess.PIPE, text=True
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_MARK)]
    if proc.returncode != 0 or not lines:
        tail = proc.stdout.strip().splitlines()[-15:] + ["(see the traceback above)"]
        return {
            "error": f"worker exited with {proc.returncode}",
            "stderr_tail": tail,
            "command": command_for(section),
            "section_s": time.perf_counter() - t0,
        }
    res = json.loads(lines[-1][len(RESULT_MARK) :])
    return {**res, "command": command_for(section), "section_s": time.perf_counter() - t0, "spec": section}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m transfersep.bench", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="CI smoke size: a couple of minutes on a laptop CPU")
    ap.add_argument("--out", default="bench/results.json", help="JSON results (written atomically)")
    ap.add_argument("--only", default="", help="comma-separated section ids or id prefixes (e.g. step-paper,dc)")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch intra-op threads")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    ap.add_argument("--list", action="store_true", help="print the section ids of this run and exit")
    ap.add_argument(
        "--gpu-check",
        action="store_true",
        help="the GPU check (scripts/gpu_check.sh): paper step fp32/bf16, DDP, loader, probe and evaluation",
    )
    ap.add_argument(
        "--update",
        action="store_true",
        help="keep the other sections of an existing --out file (re-run some sections only)",
    )
    args = ap.parse_args(argv)
    if args.gpu_check:
        args.device = "cuda"
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: torch sees no CUDA device here")
    sections = gpu_check_plan(args.threads) if args.gpu_check else plan(args.quick, args.device, args.threads)
    if args.only:
        want = [w.strip() for w in args.only.split(",") if w.strip()]
        sections = [s for s in sections if any(s["id"].startswith(w) for w in want)]
        if not sections:
            ap.error(f"--only {args.only!r} matches no section; --list shows them")
    if args.list:
        print("\n".join(s["id"] for s in sections))
        return 0
    results: dict[str, Any] = {
        "command": "python -m transfersep.bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "conditions": conditions(torch.device(args.device)),
        "sections": {},
    }
    if args.update and os.path.exists(args.out):
        with open(args.out) as f:
            old = json.load(f)
        results["sections"] = old.get("sections", {})
        results["conditions"]["earlier_runs"] = old.get("conditions", {}).get("earlier_runs", []) + [
            {k: old.get("conditions", {}).get(k) for k in ("time", "loadavg", "loadavg_end")}
            | {"command": old.get("command")}
        ]
    every = plan(False, args.device, args.threads) + plan(True, args.device, args.threads)
    if args.gpu_check:
        every = sections + every
    results["section_order"] = list(dict.fromkeys(s["id"] for s in every))  # table order
    failed = False
    for s in sections:
        print(f"[bench] {s['id']} ...", file=sys.stderr, flush=True)
        res = run_section(s)
        results["sections"][s["id"]] = res
        failed |= "error" in res
        if "error" in res:
            print(f"[bench] {s['id']} failed: {res['error']}\n  " + "\n  ".join(res["stderr_tail"]), file=sys.stderr)
        print(f"[bench] {s['id']} done in {res['section_s']:.0f} s", file=sys.stderr, flush=True)
    results["study_estimate"] = study_estimate(results["sections"])
    results["conditions"]["loadavg_end"] = [round(v, 2) for v in os.getloadavg()]
    results["table_markdown"] = render_table(results)
    print(results["table_markdown"])
    atomic_write_json(args.out, results)
    print(f"\nwrote {args.out}", file=sys.stderr)
    return 1 if failed else 0
