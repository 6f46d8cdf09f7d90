"""Replicates in the grid: seeds and folds repeat every grid point, a replicate's fine-tune starts
from the same replicate's pretraining, and the report's recipe column counts them (checked against
scipy on the runs' own result.json means)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from project import ROOT
from transfersep.run.point import GridPoint, PlanError
from transfersep.study.grid import grid_points


def test_replicate_zero_keeps_the_papers_folders_and_others_add_their_keys() -> None:
    ov = ["pretrain=slakh", "objective=dc", "augment=none", "finetune=whole", "downstream=bach10", "pretrain_steps=end"]
    pts = {gp.subdir: gp for gp in grid_points(None, [*ov, "seed=0,2", "fold=0,1"])}
    assert set(pts) == {
        "pretrain/slakh-none",
        "pretrain/slakh-none-seed2",  # pretraining has no fold: one per seed
        *(
            f"{stage}{fold}{seed}"
            for stage in ("zeroshot/slakh-none-bach10", "finetune/slakh-none-whole-bach10", "baseline/bach10")
            for fold in ("", "-fold1")
            for seed in ("", "-seed2")
        ),
    }
    # a replicate's fine-tune and probe start from the pretraining of its own seed, whatever the fold
    assert pts["finetune/slakh-none-whole-bach10-fold1-seed2"].parent_subdir == "pretrain/slakh-none-seed2"
    assert pts["zeroshot/slakh-none-bach10-fold1"].parent_subdir == "pretrain/slakh-none"
    assert pts["baseline/bach10-fold1-seed2"].as_dict()["seed"] == 2
    assert "seed" not in pts["baseline/bach10"].as_dict()  # the paper's records read as before
    with pytest.raises(PlanError, match="pretraining has none"):
        _ = GridPoint("slakh", "none", "whole", "none", fold=1).subdir


def _means(study: Path, sub: str) -> dict[int, float]:
    out = {}
    for seed in (0, 1, 2):
        res = json.loads((study / (sub + (f"-seed{seed}" if seed else "")) / "result.json").read_text())
        assert res["grid_point"].get("seed", 0) == seed
        out[seed] = res["overall"]["mean"]
    return out


def test_a_replicated_study_trains_every_point_three_times_and_reports_the_recipe(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline"}
    cmd = [
        *(sys.executable, "-m", "transfersep.cli", "study", "experiment=tiny", "data.generated=true", "logger=csv"),
        f"paths.runs_dir={tmp_path}",
        *("pretrain=slakh", "objective=dc", "augment=none", "finetune=whole", "downstream=dagstuhl"),
        "pretrain_steps=end",
        *("budget.pretrain=2", "budget.finetune=2", "seed=0,1,2"),
    ]
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    study = tmp_path / "tiny"
    assert "12 runs - 12 finished; replicates of each grid point: seed 0,1,2 x fold 0" in p.stdout
    # each fine-tune loaded the pretraining of its own seed
    for seed, suffix in ((0, ""), (1, "-seed1"), (2, "-seed2")):
        res = json.loads((study / f"finetune/slakh-none-whole-dagstuhl{suffix}" / "result.json").read_text())
        assert res["extra"]["parent"]["subdir"] == f"pretrain/slakh-none{suffix}", seed
        assert res["extra"]["parent"]["grid_point"].get("seed", 0) == seed

    out = tmp_path / "report"
    r = subprocess.run(
        [sys.executable, "-m", "transfersep.report.build", str(study), "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    tests = pd.read_csv(out / "tests.csv")
    h1 = tests[tests.family.str.startswith("H1")].iloc[0]
    x, y = _means(study, "finetune/slakh-none-whole-dagstuhl"), _means(study, "baseline/dagstuhl")
    d = np.array([x[s] - y[s] for s in (0, 1, 2)])
    ref = stats.ttest_1samp(d, 0.0, alternative="greater")
    assert int(h1.recipe_n) == 3 and int(h1.recipe_seeds) == 3 and int(h1.recipe_folds) == 1
    assert h1.recipe_mean_diff_db == pytest.approx(d.mean(), abs=1e-9)
    assert h1.recipe_sd_db == pytest.approx(d.std(ddof=1), abs=1e-9)
    assert h1.p_recipe == pytest.approx(ref.pvalue, rel=1e-9)
    ci = stats.ttest_1samp(d, 0.0).confidence_interval(0.95)
    assert (h1.recipe_ci_low, h1.recipe_ci_high) == pytest.approx((ci.low, ci.high), rel=1e-9)
    assert h1.p_better == pytest.approx((d > 0).mean())
    assert h1.recipe_claim == "recipe, these test pieces"
    md = (out / "report.md").read_text()
    assert "## Replicates" in md and "Over replicates" in md
    summary = pd.read_csv(out / "summary.csv")
    assert sorted(summary[summary.stage == "baseline"].seed) == [0, 1, 2]
