"""The pretraining-length axis on the tiny config: kept pretraining checkpoints, fine-tunes and probes
from them, the baseline scored at the matching iterations, and Figure 4 drawn from those files.

Tiny budgets: pretraining 6 steps, fine-tuning 4, baseline 10; budget.keep_pretrain [0.25, 0.5]
keeps steps round(1.5) = 2 and 3; the baseline keeps 4 (equal downstream iterations) and 2 + 4 = 6,
3 + 4 = 7 (equal totals); its end (10) is the total of the end point.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from project import ROOT

COMMON = ["experiment=tiny", "data.generated=true", "logger=csv"]


def train(runs: Path, *overrides: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}
    multi = ["-m"] if any(o.startswith("+sweeps=") for o in overrides) else []
    cmd = [sys.executable, "train.py", *multi, *COMMON, f"paths.runs_dir={runs}", *overrides]
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    if check and p.returncode != 0:
        raise AssertionError(f"{cmd} failed:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p


def digest_of(ckpt: Path) -> str:
    """The weights digest computed from the file itself (not from any record)."""
    from transfersep.model.loading import load_model
    from transfersep.model.package import weights_digest

    return weights_digest(load_model(ckpt).net.state_dict())


def mean_sisdr(scores_csv: Path) -> float:
    """Naive reference: per excerpt the mean over sources with an audible reference, then the mean."""
    df = pd.read_csv(scores_csv)
    df = df[~df["silent_reference"].astype(bool)]
    return float(df.groupby("excerpt")["sisdr_db"].mean().mean())


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    sel = ["pretrain=slakh", "objective=dc", "augment=none", "downstream=bach10"]
    train(runs, "pretrain=slakh")
    train(runs, "+sweeps=zeroshot", *sel)
    train(runs, "+sweeps=finetune", *sel)
    train(runs, "+sweeps=baseline", "downstream=bach10")
    p = subprocess.run(
        [sys.executable, "-m", "transfersep.report.build", str(runs / "tiny"), "--out", str(runs / "tiny" / "report")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    return runs / "tiny"


def test_pretraining_keeps_its_listed_checkpoints(study):
    pre = study / "pretrain" / "slakh-none"
    assert sorted(p.name for p in (pre / "kept").glob("*.ckpt")) == ["step-2.ckpt", "step-3.ckpt"]
    books = json.loads((pre / "status.json").read_text())["kept"]
    assert sorted(books) == ["2", "3"]
    for step, rec in books.items():
        assert rec["step"] == int(step)
        assert rec["weights_sha256"] == digest_of(pre / "kept" / f"step-{step}.ckpt")
    # intermediate weights, not the end's
    final = digest_of(pre / "final.ckpt")
    assert len({final, books["2"]["weights_sha256"], books["3"]["weights_sha256"]}) == 3
    assert json.loads((pre / "status.json").read_text())["result"]["steps"] == 6  # no extra training


def test_finetunes_and_probes_record_the_kept_checkpoint(study):
    pre = study / "pretrain" / "slakh-none"
    for run, step in [
        ("finetune/slakh-none-whole-bach10-half", 3),
        ("finetune/slakh-none-mask-bach10-quarter", 2),
        ("zeroshot/slakh-none-bach10-quarter", 2),
    ]:
        parent = json.loads((study / run / "status.json").read_text())["parent"]
        assert parent["steps"] == step and parent["checkpoint"] == f"kept/step-{step}.ckpt"
        assert parent["weights_sha256"] == digest_of(pre / "kept" / f"step-{step}.ckpt")
        assert json.loads((study / run / "result.json").read_text())["extra"]["parent"] == parent
    # the end point keeps the paper's folders and starts from final.ckpt
    end = json.loads((study / "finetune/slakh-none-whole-bach10/status.json").read_text())
    assert end["parent"]["weights_sha256"] == digest_of(pre / "final.ckpt")
    assert "pretrain_steps" not in end["grid_point"]


def test_baseline_is_scored_at_equal_downstream_and_equal_total_iterations(study):
    base = study / "baseline" / "bach10"
    assert json.loads((base / "result.json").read_text())["extra"]["steps"] == 10  # one run, its own budget
    scored = sorted(int(p.parent.name.removeprefix("step-")) for p in (base / "kept").glob("step-*/result.json"))
    assert scored == [4, 6, 7]
    for step in scored:
        res = json.loads((base / "kept" / f"step-{step}" / "result.json").read_text())
        assert res["grid_point"]["kept_step"] == step and res["extra"]["steps"] == step
        assert res["n_excerpts"] == json.loads((base / "result.json").read_text())["n_excerpts"]  # the full list
    assert [p.name for p in (study / "baseline").iterdir()] == ["bach10"]  # no extra baseline runs


def test_report_draws_figure4_from_them(study):
    out = study / "report"
    assert (out / "fig4_length.png").stat().st_size > 0
    t = pd.read_csv(out / "table4_length.csv")
    t = t.set_index("pretrain_steps")
    assert t.loc[["quarter", "half", "end"], "pretrain_iterations"].tolist() == [2, 3, 6]
    base = study / "baseline" / "bach10"
    for v, total in [("quarter", 6), ("half", 7)]:
        assert t.loc[v, "baseline_equal_total_db"] == pytest.approx(mean_sisdr(base / f"kept/step-{total}/scores.csv"))
        assert t.loc[v, "baseline_equal_downstream_db"] == pytest.approx(mean_sisdr(base / "kept/step-4/scores.csv"))
    assert t.loc["end", "baseline_equal_total_db"] == pytest.approx(mean_sisdr(base / "scores.csv"))
    whole = mean_sisdr(study / "finetune/slakh-none-whole-bach10-half/scores.csv")
    assert t.loc["half", "whole_db"] == pytest.approx(whole)
    assert t.loc["half", "h1_diff_db"] == pytest.approx(whole - mean_sisdr(base / "kept/step-7/scores.csv"))
    assert {"h1_p", "h1_p_units", "start_p", "start_p_units"} <= set(t.columns)
    assert "Figure 4" in (out / "report.md").read_text()
    # the paper's report (Figures 1-3) holds only the end point: no run of the axis counted twice
    assert "found twice" not in (out / "report.md").read_text()


def test_a_deleted_kept_checkpoint_is_a_problem_and_an_absent_row(study, tmp_path, capsys):
    from transfersep.report.build import main

    copy = tmp_path / "tiny"  # a copied study finds its parents by place: the copy is the study
    shutil.copytree(study, copy, ignore=shutil.ignore_patterns("report"))
    (copy / "pretrain" / "slakh-none" / "kept" / "step-2.ckpt").unlink()
    assert main([str(copy), "--out", str(copy / "report")]) == 0
    assert "0 grid point(s) missing, 3 problem(s)" in capsys.readouterr().out
    md = (copy / "report" / "report.md").read_text()
    problems = md.split("## Problems")[1].split("\n## ")[0]
    for run in ("finetune/slakh-none-whole-bach10-quarter", "finetune/slakh-none-mask-bach10-quarter"):
        assert f"left out {run}: stale, orphaned" in problems
    assert "left out zeroshot/slakh-none-bach10-quarter: stale, orphaned" in problems
    t = pd.read_csv(copy / "report" / "table4_length.csv").set_index("pretrain_steps")
    assert t.loc["quarter", "pretrain_iterations"] == 2  # the row stays, at the iterations its runs recorded
    assert t.loc[["quarter"], ["whole_db", "mask_db", "zeroshot_db", "h1_diff_db"]].isna().all(axis=None)
    assert t.loc["quarter", "note"].startswith("absent: ")
    before = pd.read_csv(study / "report" / "table4_length.csv").set_index("pretrain_steps")
    assert t.loc[["half", "end"], "whole_db"].tolist() == before.loc[["half", "end"], "whole_db"].tolist()
    fig4 = md.split("## Figure 4")[1]
    (row,) = [line for line in fig4.splitlines() if line.startswith("|") and "| 2 |" in line]
    assert "absent: finetune/slakh-none-whole-bach10-quarter left out, stale" in row


def test_a_checkpoint_the_pretraining_does_not_keep_is_refused(tmp_path):
    p = train(
        tmp_path,
        "pretrain=slakh",
        "downstream=bach10",
        "pretrain_steps=quarter",
        "budget.keep_pretrain=[0.5]",
        check=False,
    )
    assert p.returncode == 2
    (line,) = [ln for ln in (p.stdout + p.stderr).splitlines() if ln.strip()]
    assert "budget.keep_pretrain" in line and "step 2" in line
    assert not any(tmp_path.rglob("*"))


def test_the_papers_grid_is_the_axis_at_its_end():
    from project import grid_counts
    from transfersep.study.grid import grid_points

    end = grid_points(overrides=["pretrain_steps=end", "objective=dc"])
    counts = {s: sum(gp.stage == s for gp in end) for s in ("pretrain", "zeroshot", "finetune", "baseline")}
    n = grid_counts(objective=["dc"], pretrain_steps=["end"])  # the paper's 12 + 36 + 72 + 3
    assert counts == {"pretrain": n["pretrain"], "zeroshot": n["probes"], "finetune": n["finetunes"], "baseline": 3}
    assert "finetune/slakh-pitch-mask-bach10" in {gp.subdir for gp in end}
    assert all(not gp.subdir.endswith(("-end", "-half", "-quarter")) for gp in end)
    half = grid_points(["finetune"], ["pretrain_steps=half", "downstream=bach10"])
    n_half = grid_counts(downstream=["bach10"], pretrain_steps=["half"])["finetunes"]
    assert len(half) == n_half and all(gp.parent_subdir == f"pretrain/{gp.pretraining}-{gp.augment}" for gp in half)
    assert {gp.subdir for gp in half} >= {"finetune/slakh-pitch-mask-bach10-half"}


def test_the_refusal_over_a_removed_kept_checkpoint_suggests_the_command_that_restores_it(tmp_path):
    train(tmp_path, "pretrain=slakh")
    pre = tmp_path / "tiny" / "pretrain" / "slakh-none"
    kept = pre / "kept" / "step-2.ckpt"
    before = digest_of(kept)
    kept.unlink()
    p = train(
        tmp_path, "pretrain=slakh", "downstream=bach10", "finetune=zeroshot", "pretrain_steps=quarter", check=False
    )
    assert p.returncode == 2
    (line,) = [ln for ln in (p.stdout + p.stderr).splitlines() if ln.strip()]
    assert str(kept) in line
    cmd = line.split("train it again with: ")[1].split()
    assert cmd[:2] == ["transfersep", "train"]
    # follow it as given (``transfersep train`` is ``python train.py``; the common overrides are in it)
    words = [w for w in cmd[2:] if w not in COMMON and not w.startswith("paths.runs_dir=")]
    train(tmp_path, *words)
    assert kept.is_file() and digest_of(kept) == before
