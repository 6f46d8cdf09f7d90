"""`make demo` end to end at the smallest size: corpus -> pretrain -> zero-shot probe -> whole/mask ->
baseline -> report."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

from project import ROOT


def test_demo_runs_the_study_and_writes_the_report(tmp_path):
    env = {**os.environ, "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "transfersep.demo.run",
        "--data",
        str(tmp_path / "data"),
        "--runs",
        str(tmp_path / "runs"),
        "--size",
        "test",
        "--downstream",
        "bach10",
        "budget.pretrain=4",
        "budget.finetune=2",
        "data.n_test=6",
        "data.n_val=2",
        "val_every_n_steps=2",
        "checkpoint_every_n_steps=2",
        "curve.every_n_steps=2",
        "curve.n_excerpts=2",
        "logger=csv",
    ]
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-4000:]
    report = tmp_path / "runs" / "demo" / "report"
    assert f"Report: {report / 'report.md'}" in p.stdout
    for name in (
        "fig1_pretraining.png",
        "fig2_augmentation.png",
        "fig3_curves.png",
        "table2_mask_minus_whole.csv",
        "summary.csv",
        "report.md",
    ):
        assert (report / name).stat().st_size > 0, name
    with open(report / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    runs = {r["run"] if "run" in r else json.dumps(r) for r in rows}
    assert len(rows) == 4, runs  # whole, mask, baseline and the zero-shot probe on bach10
    for sub in (
        "finetune/slakh-none-whole-bach10",
        "finetune/slakh-none-mask-bach10",
        "baseline/bach10",
        "zeroshot/slakh-none-bach10",
    ):
        res = json.loads((tmp_path / "runs" / "demo" / sub / "result.json").read_text())
        assert res["sources"] == ["violin", "clarinet", "saxophone", "bassoon"]
        assert res["n_excerpts"] == 6
