"""Every way a launch stops says so in one line and writes nothing: dry runs with problems, values
of the wrong type, read-only folders, a damaged init_from package (exit 2), Ctrl-C (exit 130,
status "interrupted", and a relaunch with other hyperparameters refused)."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_train_console import TINY, env, files, train

from project import ROOT


def snapshot(run: Path) -> dict[str, bytes]:
    """Every file of a run directory with its bytes, train.log aside (a refused attempt is noted there)."""
    kept = [f for f in sorted(run.rglob("*")) if f.is_file() and f.name != "train.log"]
    return {str(f.relative_to(run)): f.read_bytes() for f in kept}


def one_line(p: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in (p.stdout + p.stderr).splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize(
    "args, expect",
    [
        (["data.generated=no", "pretrain=slakh"], "data.generated='no': expected true or false"),
        (["data.generated=true", "pretrain=slakh", "rerun=yes"], "rerun='yes': expected true or false"),
        # the dry-run switch itself, and a dry run: every key is checked before anything is written
        (["data.generated=true", "pretrain=slakh", "dry_run=1"], "dry_run=1: expected true or false"),
        (["data.generated=no", "pretrain=slakh", "dry_run=true"], "data.generated='no': expected true or false"),
        (["data.generated=true", "pretrain=slakh", "budget.pretrain=abc"], "budget.pretrain='abc': expected an int"),
        (["data.generated=true", "pretrain=slakh", "model.hidden_size=0"], "model.hidden_size=0: must be at least 1"),
        (["data.generated=true", "pretrain=slakh", "loss.dc_weights=mag"], "loss.dc_weights='mag': expected one of"),
    ],
)
def test_values_of_the_wrong_type_are_refused_before_anything_is_written(tmp_path, args, expect):
    p = train(tmp_path, "experiment=tiny", "logger=csv", *args)
    line = one_line(p)
    assert p.returncode == 2 and line.startswith("error: ") and expect in line, line
    assert files(tmp_path / "runs") == []


def test_dry_run_with_problems_exits_2_and_writes_nothing(tmp_path):
    p = train(tmp_path, "experiment=tiny", "logger=csv", "pretrain=slakh", "dry_run=true")  # no Slakh here
    assert p.returncode == 2
    (line,) = p.stderr.strip().splitlines()
    assert line.startswith("error: dry run of pretrain/slakh-none: 1 problem(s): data: slakh: root ")
    report = json.loads(p.stdout)
    assert report["plan"]["stage"] == "pretrain" and report["status"] == "missing"
    assert files(tmp_path / "runs") == []
    # without problems: the report, exit 0, and still nothing written
    p = train(tmp_path, *TINY, "pretrain=slakh", "dry_run=true")
    assert p.returncode == 0 and json.loads(p.stdout)["problems"] == [] and p.stderr == ""
    assert files(tmp_path / "runs") == []


def test_read_only_runs_dir_is_one_line_naming_the_folder(tmp_path):
    if os.geteuid() == 0:  # root writes through permission bits; sysfs refuses a new folder even to root
        ro, folder = Path("/sys/transfersep-runs"), Path("/sys")
    else:
        folder = tmp_path / "read-only"
        folder.mkdir(mode=0o555)
        ro = folder / "runs"
    for extra in ([], ["dry_run=true"], ["-m"]):
        p = train(tmp_path, *TINY, "pretrain=slakh", f"paths.runs_dir={ro}", *extra)
        line = one_line(p)
        assert p.returncode == 2 and line.startswith(f"error: cannot write in {folder}: "), line
        assert line.endswith("make the folder writable or point paths.runs_dir at a folder you can write")
        assert not ro.exists()


def test_damaged_init_from_package_is_one_line_and_leaves_no_run_directory(tmp_path):
    # a package cut short after the length of its header: what an interrupted download leaves
    pkg = tmp_path / "model.safetensors"
    pkg.write_bytes(struct.pack("<Q", 4000) + b'{"__metadata__": {"transfersep": "')
    for extra in ([], ["dry_run=true"]):
        p = train(tmp_path, *TINY, "pretrain=slakh", "downstream=bach10", f"init_from={pkg}", *extra)
        assert p.returncode == 2
        line = [ln for ln in p.stderr.splitlines() if ln.strip()][-1]
        dry = "dry run of finetune/slakh-none-whole-bach10: 1 problem(s): " if extra else ""
        assert line.startswith(f"error: {dry}{pkg}: ")
        # the file is named, says it cannot be read, and how to get a good one
        assert "readable" in line and "export" in line, line
        assert files(tmp_path / "runs") == []


def test_ctrl_c_then_a_relaunch_with_other_hyperparameters(tmp_path):
    # the run of the report, with a budget it cannot finish before the interrupt
    cmd = [*TINY, "study=s", "pretrain=slakh", "budget.pretrain=2000", "checkpoint_every_n_steps=20"]
    run = tmp_path / "runs" / "s" / "pretrain" / "slakh-none"
    last = run / "checkpoints" / "last.ckpt"
    proc = subprocess.Popen(
        [sys.executable, "train.py", *cmd],
        cwd=ROOT,
        env=env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as at a terminal: a shell starts background jobs with SIGINT ignored
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    while not last.exists() and proc.poll() is None:  # last.ckpt appears whole (written atomically)
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err[-2000:]
    (line,) = err.strip().splitlines()
    assert line.startswith("pretrain/slakh-none interrupted (Ctrl-C) at step ")
    assert line.endswith(f"; launch the same command again to resume from {last} (written every 20 steps)")
    st = json.loads((run / "status.json").read_text())
    assert st["state"] == "interrupted" and st["interrupted_at_step"] >= 20
    assert not (run / "lock.json").exists()  # the next launch may take it at once
    p = subprocess.run(
        [sys.executable, "-m", "transfersep.cli", "status", str(tmp_path / "runs" / "s"), "--sweeps", "pretrain"],
        cwd=ROOT,
        env=env(tmp_path),
        capture_output=True,
        text=True,
    )
    row = next(ln for ln in p.stdout.splitlines() if "pretrain/slakh-none" in ln)
    assert row.startswith("interrupted") and f"stopped by Ctrl-C at step {st['interrupted_at_step']}" in row

    before = snapshot(run)
    assert "lr: 0.001" in (run / ".hydra" / "config.yaml").read_text()
    for extra in ([], ["dry_run=true"]):
        p = train(tmp_path, *cmd, "optim.lr=0.01", "data.batch_size=3", *extra)
        assert p.returncode == 2, p.stderr[-2000:]
        (line,) = p.stderr.strip().splitlines()
        assert line.startswith("error: ")
        changes = "data.batch_size=3 (recorded 2), optim.lr=0.01 (recorded 0.001);"
        assert f"{run} was trained with other settings: {changes}" in line
        assert "add rerun=true" in line and "choose another study=" in line
        # nothing bent: status, checkpoint, record and Hydra's config of the run as they were
        assert snapshot(run) == before
