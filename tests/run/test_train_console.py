"""What `python train.py` / `transfersep train` say: the end-of-run summary, train.log, progress
lines, one-line user errors (exit 2, nothing written) and the verbatim multirun on a fresh clone."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from project import ROOT

TINY = ["experiment=tiny", "data.generated=true", "logger=csv"]


def env(tmp: Path, **extra: str) -> dict:
    e = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        # a fresh clone: no dataset anywhere, runs under tmp
        "TRANSFERSEP_DATA": str(tmp / "no-data"),
        "TRANSFERSEP_RUNS": str(tmp / "runs"),
    }
    for k in (
        "MUSDB_ROOT",
        "SLAKH_ROOT",
        "BACH10_ROOT",
        "DAGSTUHL_ROOT",
        "REMIXPACKS_ROOT",
        "STEMS_ROOT",
        "HYDRA_FULL_ERROR",
    ):
        e.pop(k, None)
    e.update(extra)
    return e


def train(tmp: Path, *args: str, cli: bool = False, **extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "transfersep.cli", "train", *args] if cli else [sys.executable, "train.py", *args]
    return subprocess.run(cmd, cwd=ROOT, env=env(tmp, **extra), capture_output=True, text=True, timeout=900)


def files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def test_tiny_run_prints_its_summary_and_keeps_its_log(tmp_path):
    fake = tmp_path / "bin"  # a machine with SLURM installed: Lightning's "srun is available" advice
    fake.mkdir()
    (fake / "srun").write_text("#!/bin/sh\nexit 0\n")
    (fake / "srun").chmod(0o755)
    p = train(
        tmp_path, *TINY, "pretrain=none", "downstream=bach10", cli=True, PATH=f"{fake}{os.pathsep}{os.environ['PATH']}"
    )
    assert p.returncode == 0, p.stderr[-3000:]
    run = tmp_path / "runs" / "tiny" / "baseline" / "bach10"
    result = json.loads((run / "result.json").read_text())
    out = p.stdout
    assert "baseline baseline/bach10 finished: 10 steps in " in out
    line = next(ln for ln in out.splitlines() if "SI-SDR" in ln)
    assert f"{result['overall']['mean']:.2f} dB over {result['n_excerpts']} excerpts" in line
    for s, v in result["per_source"].items():
        assert f"{s} {v['mean']:.2f}" in line
    for f in ("model.safetensors", "scores.csv", "result.json", "train.log"):
        assert str(run / f) in out
    # non-interactive output: plain progress lines for training and the evaluation
    assert "training: 10/10 steps (100%)" in out
    assert re.search(r"evaluation: (\d+)/\1 batches \(100%\)", out), out
    # Lightning's notes and Python warnings are in the log, not on the console
    assert "GPU available" not in out + p.stderr and "weights_only" not in out + p.stderr
    assert "Traceback" not in p.stderr and "srun" not in p.stderr and "LeafSpec" not in p.stderr
    log = (run / "train.log").read_text()
    assert "GPU available" in log and "Seed set to 0" in log and "finished: 10 steps" in log
    # a second attempt (here: rerun) appends to the same log
    p2 = train(tmp_path, *TINY, "pretrain=none", "downstream=bach10", "rerun=true")
    assert p2.returncode == 0, p2.stderr[-3000:]
    log2 = (run / "train.log").read_text()
    assert log2.startswith(log) and log2.count("Seed set to 0") == 2


@pytest.mark.parametrize(
    "args, expect",
    [
        (["pretrain=none", "downstream=bach10", "data.batch_size=abc"], "data.batch_size='abc': expected an integer"),
        (["pretrain=none", "downstream=bach10", "optim.lr=0"], "optim.lr=0: must be greater than 0.0"),
        (
            ["pretrain=foo"],
            "Could not find 'pretrain/foo'; Available options in 'pretrain': both, librimix, librimix_slakh, "
            "mixtures, musdb, none, slakh, wsj0mix",
        ),
        (["pretrain=none", "downstream=bach10", "data.nonexistent=3"], "no key data.nonexistent; the keys under"),
        (["pretrain=none", "downstream=bach10", "finetune=mask"], "finetune=mask with pretrain=none"),
        (
            ["pretrain=slakh", "downstream=bach10", "init_from=/nowhere/model.safetensors"],
            "init_from=/nowhere/model.safetensors: no such file",
        ),
    ],
)
def test_config_errors_are_one_line_exit_2_nothing_written(tmp_path, args, expect):
    p = train(tmp_path, *TINY, *args)
    assert p.returncode == 2, p.stderr
    lines = [ln for ln in (p.stdout + p.stderr).splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and expect in lines[0], lines
    assert files(tmp_path / "runs") == []


def test_missing_data_root_is_one_line_and_verbose_shows_the_traceback(tmp_path):
    p = train(tmp_path, "experiment=tiny", "pretrain=musdb", cli=True)
    assert p.returncode == 2
    (line,) = [ln for ln in (p.stdout + p.stderr).splitlines() if ln.strip()]
    assert line.startswith("error: musdb: root ") and str(tmp_path / "no-data" / "musdb18hq") in line
    assert "paths.musdb=" in line
    assert files(tmp_path / "runs") == []
    for flag, extra in ((["--verbose"], {}), ([], {"HYDRA_FULL_ERROR": "1"})):
        v = train(tmp_path, "experiment=tiny", "pretrain=musdb", *flag, **extra)
        assert v.returncode == 2 and "Traceback" in v.stderr and "DatasetError" in v.stderr


def test_verbatim_paper_multirun_on_a_fresh_clone(tmp_path):
    p = train(tmp_path, "-m", "pretrain=musdb,slakh,both", "augment=none,pitch,stretch,incoherent")
    assert p.returncode == 2
    assert "Traceback" not in p.stdout + p.stderr
    errors = [ln for ln in p.stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 12  # one line per job
    for corpus in ("musdb", "slakh", "both"):
        for aug in ("none", "pitch", "stretch", "incoherent"):
            (line,) = [ln for ln in errors if ln.startswith(f"error: [pretrain={corpus} augment={aug}]")]
            assert "does not exist" in line
            st = json.loads((tmp_path / "runs" / "paper" / "pretrain" / f"{corpus}-{aug}" / "status.json").read_text())
            assert st["state"] == "failed" and "does not exist" in st["error"]
    assert p.stderr.count("make demo") == 1 and "experiment=demo paths.data_dir=demo_data" in p.stderr
    assert "12 job(s) failed" in p.stderr


def test_damaged_checkpoints_are_one_line_and_left_alone(tmp_path):
    runs = tmp_path / "runs" / "tiny"
    last = runs / "baseline" / "bach10" / "checkpoints" / "last.ckpt"
    last.parent.mkdir(parents=True)
    last.write_bytes(b"PK\x03\x04" + bytes(100))  # a zip header, then nothing: a truncated save
    before = files(tmp_path / "runs")
    p = train(tmp_path, *TINY, "pretrain=none", "downstream=bach10")
    assert p.returncode == 2
    (line,) = [ln for ln in (p.stdout + p.stderr).splitlines() if ln.strip()]
    assert line.startswith(f"error: {last}: the checkpoint this run would resume from is damaged")
    assert "delete it to train the run from its start" in line
    # an existing run directory only gets the attempt noted in its train.log; nothing of the run
    # changes: no status, no .hydra/ of a launch that never ran, the damaged file as it was
    new = set(files(tmp_path / "runs")) - set(before)
    assert {f.split("bach10/", 1)[1].split("/")[0] for f in new} == {"train.log"}
    assert last.read_bytes() == b"PK\x03\x04" + bytes(100)
    assert "is damaged" in (last.parent.parent / "train.log").read_text()

    parent = runs / "pretrain" / "slakh-none" / "final.ckpt"
    parent.parent.mkdir(parents=True)
    parent.write_bytes(b"not a checkpoint")
    p = train(tmp_path, *TINY, "pretrain=slakh", "downstream=bach10")
    assert p.returncode == 2
    (line,) = [ln for ln in (p.stdout + p.stderr).splitlines() if ln.strip()]
    assert line.startswith(f"error: {parent}: the pretrained checkpoint is damaged")
    assert line.endswith(
        "train its run again: transfersep train pretrain=slakh augment=none study=tiny "
        "experiment=tiny data.generated=true logger=csv rerun=true"
    )
    assert not (runs / "finetune").exists()
