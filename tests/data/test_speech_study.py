"""Speech pretraining end to end from the command line (tiny, CPU, generated data): a study with
pretrain=librimix runs its pretraining, zero-shot probe, fine-tune and baseline, status lists them as
the study's grid, and the report names the corpus; the other speech corpora pretrain and fine-tune."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from project import ROOT
from transfersep.files import FINAL_CKPT

TINY = ["experiment=tiny", "data.generated=true", "logger=csv"]


def run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline"}
    p = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return p


def finished(run_dir: Path) -> bool:
    return json.loads((run_dir / "status.json").read_text())["state"] == "finished"


def test_librimix_study_probe_finetune_baseline_status_report(tmp_path: Path) -> None:
    grid = ["pretrain=librimix", "objective=dc", "augment=none", "finetune=whole", "downstream=dagstuhl"]
    grid += ["pretrain_steps=end"]
    run("-m", "transfersep.cli", "study", *TINY, f"paths.runs_dir={tmp_path}", *grid)
    study = tmp_path / "tiny"
    subs = ["pretrain/librimix-none", "zeroshot/librimix-none-dagstuhl", "finetune/librimix-none-whole-dagstuhl"]
    assert all(finished(study / s) for s in [*subs, "baseline/dagstuhl"])
    probe = json.loads((study / subs[1] / "result.json").read_text())
    assert probe["extra"]["method"] == "dc-kmeans"
    # off the grid's default pretrain axis: the runs are listed as such, and the same key as the
    # study's narrows status to them like any grid value
    status = run("-m", "transfersep.cli", "status", str(study)).stdout
    assert "4 runs - 4 finished" in status
    assert re.search(r"finished +pretrain/librimix-none +\[outside the grid\]", status)
    status = run("-m", "transfersep.cli", "status", str(study), "pretrain=librimix").stdout
    assert "4 runs - 4 finished" in status and "outside the grid" not in status
    run("-m", "transfersep.cli", "report", str(study), "--out", str(tmp_path / "report"))
    report = (tmp_path / "report" / "report.md").read_text()
    # data.generated=true: the report names the generated audio wherever it names a corpus
    assert "LibriMix (speech) (generated audio), no augmentation, whole → Dagstuhl ChoirSet (generated audio)" in report


@pytest.mark.parametrize("pretrain,n_sources", [("wsj0mix", 2), ("librimix_slakh", 5)])
def test_speech_corpora_pretrain_then_fine_tune(pretrain: str, n_sources: int, tmp_path: Path) -> None:
    run("train.py", *TINY, f"paths.runs_dir={tmp_path}", f"pretrain={pretrain}")
    pre = tmp_path / "tiny" / "pretrain" / f"{pretrain}-none"
    sd = torch.load(pre / FINAL_CKPT, map_location="cpu", weights_only=True)["state_dict"]
    hidden = sd["model.norm.gain"].shape[0]
    assert sd["model.mask_head.weight"].shape[0] == n_sources * hidden  # one mask per speaker slot / class
    run("train.py", *TINY, f"paths.runs_dir={tmp_path}", f"pretrain={pretrain}", "downstream=bach10", "finetune=mask")
    ft = tmp_path / "tiny" / "finetune" / f"{pretrain}-none-mask-bach10"
    assert finished(ft) and (ft / "result.json").is_file()
    sd = torch.load(ft / FINAL_CKPT, map_location="cpu", weights_only=True)["state_dict"]
    assert sd["model.mask_head.weight"].shape[0] == 4 * hidden  # Bach10's four instruments
