"""The study's grid through the real SLURM scheduler (hydra/launcher=slurm, submitit job arrays):
the 12-run pretraining grid and a fine-tune after it, and a job that gets SLURM's time-limit
signal, is requeued by submitit and resumes from its last checkpoint.

Needs the one-node loopback cluster of `sudo scripts/slurm_cluster.sh up` (skipped otherwise);
refuses other clusters unless TRANSFERSEP_SLURM_ANY_CLUSTER=1. The node has no GPUs
(gpus_per_node=0) and runs two single-core jobs at a time.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import torch

from project import ROOT

pytestmark = pytest.mark.slurm

WAIT_S = 1200  # guard against a hung scheduler or a job that died without a result (no sacct here)


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30)


def launcher(partition: str, name: str) -> list[str]:
    # every key a developer's conf/local/slurm.yaml may set, fixed so the test runs the same anywhere
    return [
        "hydra/launcher=slurm",
        f"hydra.launcher.partition={partition}",
        "hydra.launcher.account=null",
        "hydra.launcher.qos=null",
        "hydra.launcher.constraint=null",
        "hydra.launcher.exclude=null",
        "hydra.launcher.gpus_per_node=0",
        "hydra.launcher.tasks_per_node=1",
        "hydra.launcher.cpus_per_task=1",
        "hydra.launcher.mem_gb=2",
        "hydra.launcher.timeout_min=20",
        "hydra.launcher.setup=[]",
        "hydra.launcher.additional_parameters={}",
        "hydra.launcher.array_parallelism=4",
        f"hydra.launcher.name={name}",
    ]


def multirun(runs: Path, partition: str, *grid: str) -> subprocess.CompletedProcess:
    name = f"tsep-grid-{uuid.uuid4().hex[:8]}"
    cmd = [
        sys.executable,
        "train.py",
        "-m",
        *grid,
        "experiment=tiny",
        "data.generated=true",
        "logger=csv",
        f"paths.runs_dir={runs}",
        "budget.pretrain=2",
        "budget.finetune=2",
        *launcher(partition, name),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    try:
        return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=WAIT_S)
    except subprocess.TimeoutExpired as e:
        _run(["scancel", "--name", name])
        pytest.fail(f"multirun did not end within {WAIT_S}s\n{e.stdout}\n{e.stderr}")


def status(run: Path) -> dict:
    return json.loads((run / "status.json").read_text())


def test_pretraining_grid_then_a_finetune(partition: str, tmp_path: Path) -> None:
    # the grid exactly as the design states it, plus the test cluster's settings
    p = multirun(tmp_path, partition, "pretrain=musdb,slakh,both", "augment=none,pitch,stretch,incoherent")
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    study = tmp_path / "tiny"
    runs = sorted((study / "pretrain").iterdir())
    assert [r.name for r in runs] == sorted(
        f"{c}-{a}" for c in ("musdb", "slakh", "both") for a in ("none", "pitch", "stretch", "incoherent")
    )
    arrays = set()
    for run in runs:
        st = status(run)
        assert st["state"] == "finished", (run, st)
        assert torch.load(run / "final.ckpt", map_location="cpu", weights_only=True)["global_step"] == 2
        arrays.add(st["slurm_array_id"].split("_")[0])
        assert Path(st["submitit_logs"][0]).is_file()  # .submitit/<array>_<task>/..._log.out
    assert len(arrays) == 1, f"the 12 grid points should be one job array, got {arrays}"

    p = multirun(tmp_path, partition, "pretrain=slakh", "augment=pitch", "finetune=mask", "downstream=dagstuhl")
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    fine = study / "finetune" / "slakh-pitch-mask-dagstuhl"
    assert status(fine)["state"] == "finished"
    assert (fine / "scores.csv").is_file() and (fine / "result.json").is_file()

    from transfersep.cli import main as cli_main

    assert cli_main(["status", str(study), "--sweeps", "pretrain"]) == 0


def test_time_limit_signal_requeues_and_resumes(partition: str, tmp_path: Path) -> None:
    """SLURM's warning before the time limit (`--signal=USR2@...`, sent here by hand as submitit's
    own tests do): last.ckpt is written at the next step, submitit requeues the same job, and the
    rerun resumes and finishes the budget."""
    steps = 100
    name = f"tsep-requeue-{uuid.uuid4().hex[:8]}"
    cmd = [
        sys.executable,
        "train.py",
        "-m",
        "pretrain=musdb",
        "augment=none",
        "experiment=tiny",
        "data.generated=true",
        "logger=csv",
        f"paths.runs_dir={tmp_path}",
        f"budget.pretrain={steps}",
        "val_every_n_steps=10",
        "optim.plateau_patience_steps=50",
        "checkpoint_every_n_steps=5",
        *launcher(partition, name),
    ]
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    run = tmp_path / "tiny" / "pretrain" / "musdb-none"
    try:
        deadline = time.monotonic() + WAIT_S
        while not (run / "checkpoints" / "last.ckpt").exists():  # training is under way
            assert time.monotonic() < deadline and proc.poll() is None, proc.stdout.read() if proc.poll() else ""
            time.sleep(0.2)
        job = status(run)["slurm_job_id"]
        assert _run(["scancel", job, "--signal", "USR2"]).returncode == 0
        out, _ = proc.communicate(timeout=WAIT_S)
    except BaseException:
        _run(["scancel", "--name", name])
        proc.kill()
        raise
    assert proc.returncode == 0, out[-3000:]
    st = status(run)
    assert st["state"] == "finished" and st["slurm_job_id"] == job and st["slurm_restarts"] == 1
    log = Path(st["submitit_logs"][0]).read_text()
    assert "stopped by SIGUSR2" in log and "Requeued job" in log
    ck = torch.load(run / "final.ckpt", map_location="cpu", weights_only=False)
    assert ck["global_step"] == steps and len(ck["autoclip"]["history"]) == steps
    with open(run / "csv" / "metrics.csv", newline="") as f:
        logged = [int(r["step"]) for r in csv.DictReader(f) if r["train/loss"]]
    assert sorted(logged) == list(range(steps))  # both attempts together: every step exactly once
