"""A run killed mid-way and launched again ends exactly where an uninterrupted run ends; two runs
with the same seed give the same losses (tiny model, CPU, real train.py processes).

The kills come from tests/resume_harness.py: train.py's main, sending itself a real signal right
after a chosen optimiser step, so the tests do not depend on timing. The learning rate is set so
that the LR-plateau scheduler halves it at step 6: a resumed run that skipped or shifted one
validation would drift from the reference in its weights, not only in the scheduler state.
"""

from __future__ import annotations

import csv
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from project import ROOT

STEPS = 12
COMMON = [
    "experiment=tiny",
    "data.generated=true",
    "pretrain=slakh",
    f"budget.pretrain={STEPS}",
    "optim.lr=0.2",
    "optim.plateau_patience_steps=4",
    "checkpoint_every_n_steps=4",
]
RUN = Path("pretrain/slakh-none")
TIMEOUT = 900


def _env() -> dict:
    # one thread everywhere: CPU kernels give bit-identical sums only at a fixed thread count
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "WANDB_DISABLE_CODE": "true",
        "HYDRA_FULL_ERROR": "1",
    }


def start(runs: Path, *overrides: str, kill: tuple[str, int] | None = None) -> subprocess.Popen:
    prog = [str(ROOT / "tests" / "helpers" / "resume_harness.py"), kill[0], str(kill[1])] if kill else ["train.py"]
    cmd = [sys.executable, *prog, *COMMON, f"paths.runs_dir={runs}", *overrides]
    return subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(p: subprocess.Popen, expect_rc: int = 0) -> str:
    out, _ = p.communicate(timeout=TIMEOUT)
    assert p.returncode == expect_rc, f"{p.args}\nexit {p.returncode}, expected {expect_rc}:\n{out[-4000:]}"
    return out


def ckpt(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


def losses(run_dir: Path) -> dict[tuple[int, str], float]:
    """{(step, metric): value} of every train/val loss row of csv/metrics.csv."""
    out = {}
    with open(run_dir / "csv" / "metrics.csv", newline="") as f:
        for row in csv.DictReader(f):
            for k in ("train/loss", "val/loss", "lr-Adam"):
                if row.get(k):
                    key = (int(row["step"]), k)
                    assert key not in out, f"{run_dir}: {key} logged twice"
                    out[key] = float(row[k])
    return out


def assert_same_final_state(run: Path, ref: Path) -> None:
    a, b = ckpt(run / "final.ckpt"), ckpt(ref / "final.ckpt")
    assert a["global_step"] == b["global_step"] == STEPS
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for k in a["state_dict"]:
        torch.testing.assert_close(a["state_dict"][k], b["state_dict"][k], rtol=0, atol=1e-6, msg=k)
    sa, sb = a["optimizer_states"][0], b["optimizer_states"][0]
    assert sa["param_groups"][0]["lr"] == sb["param_groups"][0]["lr"] == 0.1  # halved once, at step 6
    for i in sb["state"]:
        for k in ("step", "exp_avg", "exp_avg_sq"):
            torch.testing.assert_close(sa["state"][i][k], sb["state"][i][k], rtol=0, atol=1e-6)
    pa, pb = a["lr_schedulers"][0], b["lr_schedulers"][0]
    for k in ("last_epoch", "num_bad_epochs", "cooldown_counter", "_last_lr"):
        assert pa[k] == pb[k], k
    assert pa["best"] == pytest.approx(pb["best"], abs=1e-6)
    ha, hb = a["autoclip"]["history"], b["autoclip"]["history"]
    assert len(ha) == len(hb) == STEPS
    assert ha == pytest.approx(hb, abs=1e-6)
    # the metrics continue across the kill: every step's losses and LR once, equal to the reference
    la, lb = losses(run), losses(ref)
    assert la.keys() == lb.keys()
    assert {s for s, k in la if k == "train/loss"} == set(range(STEPS))
    for key in lb:
        assert la[key] == pytest.approx(lb[key], abs=1e-6), key


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """An uninterrupted run, and (in parallel) a second one with the same seed and one with another."""
    base = tmp_path_factory.mktemp("reference")
    procs = [start(base, "logger=csv", "study=ref"), start(base, "logger=csv", "study=again")]
    for p in procs:
        finish(p)
    finish(start(base, "logger=csv", "study=seed1", "seed=1"))
    return base


def test_same_seed_same_losses(reference: Path) -> None:
    ref, again = (losses(reference / s / RUN) for s in ("ref", "again"))
    other = losses(reference / "seed1" / f"{RUN}-seed1")  # another replicate: its own folder
    assert len(ref) == STEPS * 2 + STEPS // 2  # train loss and LR every step, val loss every 2nd
    assert again == ref  # bit-identical
    train = [k for k in ref if k[1] == "train/loss"]
    assert all(other[k] != ref[k] for k in train)  # the seed does change init and data


def test_sigkill_resumes_to_the_uninterrupted_result(reference: Path, tmp_path: Path) -> None:
    import wandb
    from omegaconf import OmegaConf

    from transfersep.files import read_status
    from transfersep.run.holder import read_lock
    from transfersep.run.loggers import wandb_run_id
    from transfersep.run.plan import Plan
    from transfersep.run.point import GridPoint

    # a parent that used W&B itself (pytest here; a notebook or driver script for users) hands its
    # service to children through WANDB_SERVICE; the killed run's stream must not block the relaunch
    wandb.init(mode="offline", dir=str(tmp_path), project="parent").finish()
    assert os.environ.get("WANDB_SERVICE")
    run = tmp_path / "tiny" / RUN
    dead = start(tmp_path, kill=("KILL", 7))
    finish(dead, expect_rc=-signal.SIGKILL)
    assert read_status(run)["state"] == "running"
    assert not (run / "final.ckpt").exists()
    assert ckpt(run / "checkpoints" / "last.ckpt")["global_step"] == 4  # the last 4-step checkpoint

    killed = read_lock(run)  # the lock the killed run left behind is taken over by the relaunch
    assert killed["host"] == socket.gethostname() and killed["pid"] == dead.pid
    out = finish(start(tmp_path))
    assert f"took over the lock of host {killed['host']} pid {dead.pid}" in out
    assert f"process {dead.pid} on {killed['host']} is gone" in out
    assert not (run / "lock.json").exists()
    assert f"{RUN.as_posix()}: resuming from {run / 'checkpoints' / 'last.ckpt'}" in out
    assert "not resumable" not in out  # the loader resumes at the right batch by construction
    log = (run / "train.log").read_text()
    assert "Restoring states from the checkpoint" in log  # Lightning's own note, in the run's log
    assert log.count("Seed set to 0") == 2  # both attempts, one log
    assert read_status(run)["state"] == "finished"
    assert_same_final_state(run, reference / "ref" / RUN)

    # both attempts logged to the same W&B run (offline run directories end in the run id)
    cfg = OmegaConf.create({"logger": {"wandb": {"project": "transfersep"}}, "study": "tiny"})
    plan = Plan(GridPoint("slakh", "none", "whole", "none"), "pretrain", run, STEPS)
    ids = {d.name.rsplit("-", 1)[1] for d in (run / "wandb").glob("offline-run-*")}
    assert len(list((run / "wandb").glob("offline-run-*"))) == 2
    assert ids == {wandb_run_id(cfg, plan)}


def _proc_state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def test_two_launches_at_once_one_trains(reference: Path, tmp_path: Path) -> None:
    """The same grid point started twice at once: whichever takes the lock trains (and stops itself
    after step 1, holding it); the other exits at once, naming the holder; the weights are a
    single run's."""
    from transfersep.files import read_status

    run = tmp_path / "tiny" / RUN
    procs = [start(tmp_path, "logger=csv", kill=("STOP", 1)) for _ in range(2)]
    try:
        deadline = time.monotonic() + TIMEOUT
        while all(p.poll() is None for p in procs):
            assert time.monotonic() < deadline, "neither launch ended"
            time.sleep(0.1)
        loser = next(p for p in procs if p.poll() is not None)
        winner = next(p for p in procs if p is not loser)
        out = finish(loser)  # a skip is no failure: exit 0, as for a finished run
        assert f"is held by host {socket.gethostname()} pid {winner.pid}" in out and "skipping it" in out
        assert "Restoring states" not in out
        while _proc_state(winner.pid) != "T":  # the winner has stopped itself after step 1
            assert time.monotonic() < deadline and winner.poll() is None
            time.sleep(0.05)
        winner.send_signal(signal.SIGCONT)
        finish(winner)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    st = read_status(run)
    assert st["state"] == "finished" and st["pid"] == winner.pid
    assert not (run / "lock.json").exists()
    assert_same_final_state(run, reference / "ref" / RUN)


@pytest.mark.parametrize("sig", ["TERM", "USR1", "USR2"])
def test_signal_writes_last_ckpt_at_the_next_step_and_resumes(sig: str, reference: Path, tmp_path: Path) -> None:
    from transfersep.files import read_status

    run = tmp_path / "tiny" / RUN
    # checkpoints every 100 steps: a last.ckpt at step 6 can only come from the signal
    out = finish(
        start(tmp_path, "logger=csv", "checkpoint_every_n_steps=100", kill=(sig, 6)),
        expect_rc=128 + signal.Signals["SIG" + sig],
    )
    assert f"stopped by SIG{sig} at step 6" in out
    st = read_status(run)
    assert st["state"] == "running" and st["error"] is None  # not a failure: relaunch resumes
    assert ckpt(run / "checkpoints" / "last.ckpt")["global_step"] == 6

    finish(start(tmp_path, "logger=csv"))
    assert read_status(run)["state"] == "finished"
    assert_same_final_state(run, reference / "ref" / RUN)


@pytest.mark.slow
def test_ddp_sigterm_stops_every_rank_and_resumes(tmp_path: Path) -> None:
    """trainer=ddp on two CPU processes (gloo): a SIGTERM to the launching process stops both ranks
    at the same step boundary, after last.ckpt; the resumed run ends as an uninterrupted one.
    (No GPU is needed for the logic under test; GPU runs use the same code with NCCL.)"""
    import time

    from transfersep.files import read_status

    ddp = [
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.num_sanity_val_steps=0",
        "logger=csv",
        "budget.pretrain=40",
        "checkpoint_every_n_steps=2",
    ]
    run = tmp_path / "tiny" / RUN
    p = start(tmp_path, *ddp)
    deadline = time.monotonic() + TIMEOUT
    while not (run / "checkpoints" / "last.ckpt").exists():
        assert p.poll() is None and time.monotonic() < deadline, p.communicate()[0][-3000:]
        time.sleep(0.1)
    p.send_signal(signal.SIGTERM)
    out = finish(p, expect_rc=128 + signal.SIGTERM)
    assert "stopped by SIGTERM" in out and "stopped by a stop signal on another rank" in out
    stopped = ckpt(run / "checkpoints" / "last.ckpt")["global_step"]
    assert 2 <= stopped < 40 and read_status(run)["state"] == "running"

    finish(start(tmp_path, *ddp))
    finish(start(tmp_path, *ddp, "study=ref"))
    a, b = ckpt(run / "final.ckpt"), ckpt(tmp_path / "ref" / RUN / "final.ckpt")
    assert a["global_step"] == b["global_step"] == 40
    for k in b["state_dict"]:
        torch.testing.assert_close(a["state_dict"][k], b["state_dict"][k], rtol=0, atol=1e-6, msg=k)
    assert a["autoclip"]["history"] == pytest.approx(b["autoclip"]["history"], abs=1e-6)
    assert a["lr_schedulers"][0]["last_epoch"] == b["lr_schedulers"][0]["last_epoch"]
