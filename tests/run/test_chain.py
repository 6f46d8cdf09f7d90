"""pretrain -> fine-tune whole -> fine-tune mask -> baseline from the command line (tiny, CPU)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import torch

from project import ROOT

COMMON = ["experiment=tiny", "data.generated=true", "logger=csv"]


def train(runs: Path, *overrides: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "train.py", *COMMON, f"paths.runs_dir={runs}", *overrides]
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    if check and p.returncode != 0:
        raise AssertionError(f"{cmd} failed:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p


def status(run_dir: Path) -> dict:
    return json.loads((run_dir / "status.json").read_text())


def model_state(ckpt: Path) -> dict:
    sd = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    return {k[len("model.") :]: v for k, v in sd.items() if k.startswith("model.")}


def test_missing_pretrained_checkpoint_names_the_command(tmp_path):
    p = train(tmp_path, "pretrain=musdb", "augment=pitch", "downstream=bach10", check=False)
    assert p.returncode == 2
    out = p.stdout + p.stderr
    (line,) = [ln for ln in out.splitlines() if ln.strip()]  # one line, no traceback
    assert line.startswith("error: ") and "final.ckpt" in line
    # the suggested command keeps the user's own overrides, so it produces exactly the missing parent
    cmd = line.split("produce it first with: ")[1]
    assert cmd == (
        f"transfersep train pretrain=musdb augment=pitch study=tiny experiment=tiny data.generated=true "
        f"logger=csv paths.runs_dir={tmp_path}"
    )
    assert not any(tmp_path.rglob("*")), "a refused run writes nothing"


def test_dry_run_reports_plan_without_training(tmp_path):
    p = train(tmp_path, "pretrain=slakh", "downstream=dagstuhl", "finetune=mask", "dry_run=true", check=False)
    assert p.returncode == 2  # the parent checkpoint is missing: reported, nothing trained
    report = json.loads(p.stdout[p.stdout.index("{") :])
    assert report["plan"]["stage"] == "finetune" and report["plan"]["phase"] == "mask"
    assert report["sources"] == ["male", "female"]
    assert any("pretrain=slakh augment=none" in s for s in report["problems"])
    assert not (tmp_path / "tiny").exists()  # a dry run writes nothing


def test_bad_grid_point_is_refused(tmp_path):
    p = train(tmp_path, "pretrain=none", "downstream=bach10", "finetune=mask", check=False)
    assert p.returncode == 2 and "mask-only training needs a pretrained model" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and p.stderr.startswith("error: finetune=mask")
    assert not any(tmp_path.rglob("*"))
    p = train(tmp_path, "pretrain=none", "downstream=bach10", "finetune=zeroshot", check=False)
    assert p.returncode == 2 and "finetune=zeroshot with pretrain=none" in p.stderr


def test_chain_pretrain_finetune_mask_baseline(tmp_path):
    study = tmp_path / "tiny"
    train(tmp_path, "pretrain=slakh")
    pre = study / "pretrain" / "slakh-none"
    assert status(pre)["state"] == "finished" and (pre / "final.ckpt").exists()

    train(tmp_path, "pretrain=slakh", "downstream=bach10", "finetune=whole")
    whole = study / "finetune" / "slakh-none-whole-bach10"
    train(tmp_path, "pretrain=slakh", "downstream=bach10", "finetune=mask")
    mask = study / "finetune" / "slakh-none-mask-bach10"
    train(tmp_path, "pretrain=none", "downstream=bach10")
    base = study / "baseline" / "bach10"

    pre_w, mask_w, whole_w = (
        model_state(pre / "final.ckpt"),
        model_state(mask / "final.ckpt"),
        model_state(whole / "final.ckpt"),
    )
    # the mask model kept every pretrained weight but the (rebuilt, 4-source) mask head
    for k, v in pre_w.items():
        if k.startswith("mask_head."):
            assert mask_w[k].shape[0] == 257 * 4 and v.shape[0] == 257 * 3
        else:
            assert torch.equal(v, mask_w[k]), k
    assert not torch.equal(pre_w["blstm.weight_hh_l0"], whole_w["blstm.weight_hh_l0"])

    for run, steps in ((whole, 4), (mask, 4), (base, 10)):
        st = status(run)
        assert st["state"] == "finished", st
        result = json.loads((run / "result.json").read_text())
        assert result["grid_point"] == st["grid_point"]
        assert (run / "scores.csv").exists()
        assert torch.load(run / "final.ckpt", weights_only=True)["global_step"] == steps

    # a relaunch skips the finished run
    p = train(tmp_path, "pretrain=none", "downstream=bach10")
    assert "already finished" in p.stdout + p.stderr

    # the zero-shot probe of the pretrained model: scored on the fine-tunes' test excerpts, nothing trained
    train(tmp_path, "pretrain=slakh", "downstream=bach10", "finetune=zeroshot")
    zero = study / "zeroshot" / "slakh-none-bach10"
    res, ref = (json.loads((r / "result.json").read_text()) for r in (zero, whole))
    assert status(zero)["state"] == "finished" and not (zero / "final.ckpt").exists()
    assert res["grid_point"]["stage"] == "zeroshot" and res["test_set_sha1"] == ref["test_set_sha1"]
    assert res["n_excerpts"] == ref["n_excerpts"] and res["extra"]["method"] == "dc-kmeans"
    assert res["extra"]["checkpoint"] == str(pre / "final.ckpt")
    assert math.isfinite(res["extra"]["mixture_as_estimate_sisdr"])  # the floor is recorded beside the score
    assert "already finished" in (lambda p: p.stdout + p.stderr)(
        train(tmp_path, "pretrain=slakh", "downstream=bach10", "finetune=zeroshot")
    )
