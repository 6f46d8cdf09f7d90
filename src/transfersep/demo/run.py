"""`make demo`: the whole study, small, on CPU, on the demo corpus rendered from real scores.

    python -m transfersep.demo.run [--data demo_data] [--runs runs] [--size demo|test]

1. renders the corpus once (cached) into miniature copies of the real layouts;
2. pretrains on the Slakh-style corpus (DC only);
3. fine-tunes whole and mask models on Bach10- and Dagstuhl-style sets (more with --downstream);
4. trains from-scratch baselines with pretraining + fine-tuning iterations;
5. writes the report (Figures 1-3, Table 2, Wilcoxon tests) and prints where it is.
Every stage is an ordinary `python train.py -m ...` multirun, so the demo runs exactly the path
a researcher's study takes; finished runs are skipped when the demo is run again.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def sh(cmd: list[str]) -> None:
    print("\n$ " + shlex.join(cmd), flush=True)
    t0 = time.time()
    p = subprocess.run(cmd, cwd=ROOT)
    print(f"  ({time.time() - t0:.0f} s)", flush=True)
    if p.returncode != 0:
        raise SystemExit(f"demo step failed (exit {p.returncode}): {shlex.join(cmd)}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="demo_data", help="where the demo corpus is rendered (cached)")
    ap.add_argument("--runs", default="runs", help="runs directory (the study is <runs>/<study>)")
    ap.add_argument("--study", default="demo")
    ap.add_argument("--size", default="demo", choices=["demo", "test"], help="corpus size")
    ap.add_argument("--pretrain", default="slakh", help="pretraining corpus (comma list)")
    ap.add_argument("--downstream", default="bach10,dagstuhl", help="downstream sets (comma list)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("overrides", nargs="*", help="extra Hydra overrides for every run (e.g. budget.pretrain=50)")
    a = ap.parse_args(argv)

    from transfersep.demo.corpus import build_corpus
    from transfersep.demo.render import RenderToolMissing

    data, runs = Path(a.data).resolve(), Path(a.runs).resolve()
    sets = sorted({*a.pretrain.split(","), *a.downstream.split(",")})
    t0 = time.time()
    try:
        build_corpus(data, size=a.size, seed=a.seed, only=sets)
    except RenderToolMissing as e:
        raise SystemExit(f"error: {e}") from None
    print(f"demo corpus ready in {data} ({time.time() - t0:.0f} s)", flush=True)

    os.environ.setdefault("WANDB_MODE", "offline")
    common = ["experiment=demo", f"paths.data_dir={data}", f"paths.runs_dir={runs}", f"study={a.study}",
              f"seed={a.seed}", *a.overrides]
    train = [sys.executable, str(ROOT / "train.py"), "-m"]
    sh(train + common + [f"pretrain={a.pretrain}", "augment=none", "downstream=none"])
    sh(train + common + [f"pretrain={a.pretrain}", "augment=none", "finetune=whole,mask", f"downstream={a.downstream}"])
    sh(train + common + ["pretrain=none", "augment=none", "finetune=whole", f"downstream={a.downstream}"])
    report = runs / a.study / "report"
    sh([sys.executable, "-m", "transfersep.eval.report", str(runs / a.study), "--out", str(report)])
    print(f"\nThe demo finished in {time.time() - t0:.0f} s. Report: {report / 'report.md'}", flush=True)


if __name__ == "__main__":
    main()
