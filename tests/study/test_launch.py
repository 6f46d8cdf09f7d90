"""The study runner: stage order, which overrides reach which stage, fine-tuning only from finished
pretraining, and a small study end to end (tiny model, CPU)."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

from project import ROOT
from transfersep.cli import main as cli_main
from transfersep.study.grid import grid_points, load_grid
from transfersep.study.launch import finetune_launches


def finish(study: Path, subdir: str) -> None:
    run = study / subdir
    run.mkdir(parents=True)
    (run / "status.json").write_text(json.dumps({"state": "finished"}))
    (run / "final.ckpt").write_bytes(b"x")


def test_dry_run_orders_stages_and_routes_overrides(tmp_path: Path, capsys) -> None:
    assert (
        cli_main(
            [
                "study",
                "--dry-run",
                "--launcher",
                "slurm",
                "experiment=tiny",
                f"paths.runs_dir={tmp_path}",
                "downstream=bach10",
                "pretrain=musdb",
                "finetune=mask",
            ]
        )
        == 0
    )
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "+sweeps=" in ln]
    assert [ln.split("+sweeps=")[1].split()[0] for ln in lines] == list(load_grid().stages)  # in the grid's order
    pre, zero, fine, base = (set(ln.split()) for ln in lines)
    assert {"pretrain=musdb", "downstream=bach10"} <= zero and "finetune=mask" not in zero
    common = {"experiment=tiny", f"paths.runs_dir={tmp_path}", "hydra/launcher=slurm", "-m"}
    assert common <= pre and common <= fine and common <= base
    assert "pretrain=musdb" in pre and not {"downstream=bach10", "finetune=mask"} & pre
    assert {"pretrain=musdb", "finetune=mask", "downstream=bach10"} <= fine
    assert "downstream=bach10" in base and not {"pretrain=musdb", "finetune=mask"} & base


def test_finetunes_launch_only_from_finished_pretraining(tmp_path: Path) -> None:
    done = {("musdb", "none"), ("musdb", "pitch"), ("slakh", "none"), ("slakh", "pitch"), ("both", "stretch")}
    for p, a in done:
        finish(tmp_path, f"pretrain/{p}-{a}")
    launches, blocked = finetune_launches(tmp_path, ["downstream=bach10", "study=x"])
    expected = {
        f"finetune/{p}-{a}-{f}-bach10{at}"
        for (p, a), f, at in itertools.product(done, ["whole", "mask"], ["-quarter", "-half", ""])
    }  # at each pretraining length of the grid
    launched = [gp.subdir for ov in launches for gp in grid_points(["finetune"], ov)]
    assert all("study=x" in ov and "downstream=bach10" in ov for ov in launches)
    assert sorted(launched) == sorted(expected)  # each exactly once
    assert len(launches) == 2  # musdb+slakh share {none, pitch}; both has {stretch}
    assert set(blocked) == {gp.subdir for gp in grid_points(["finetune"], ["downstream=bach10"])} - expected

    # all pretraining finished: the grid goes out as one multirun with the overrides unchanged
    for gp in grid_points(["pretrain"], []):  # every corpus, augmentation and objective of the grid
        if not (tmp_path / gp.subdir / "status.json").is_file():
            finish(tmp_path, gp.subdir)
    assert finetune_launches(tmp_path, ["downstream=bach10"]) == ([["downstream=bach10"]], [])


def test_small_study_end_to_end(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "transfersep.cli",
        "study",
        "experiment=tiny",
        "data.generated=true",
        "logger=csv",
        f"paths.runs_dir={tmp_path}",
        "pretrain=slakh",
        "objective=dc",
        "augment=none",
        "finetune=whole",
        "downstream=dagstuhl",
        "pretrain_steps=end",  # the paper's grid: the other lengths are tests/run/test_length.py's
        "budget.pretrain=2",
        "budget.finetune=2",
    ]
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    study = tmp_path / "tiny"
    for sub in (
        "pretrain/slakh-none",
        "zeroshot/slakh-none-dagstuhl",
        "finetune/slakh-none-whole-dagstuhl",
        "baseline/dagstuhl",
    ):
        assert json.loads((study / sub / "status.json").read_text())["state"] == "finished", sub
    assert "4 runs - 4 finished" in p.stdout
