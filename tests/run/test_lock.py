"""lock.json: who owns a run directory, and when a relaunch may take it over (real processes on
this host, a stand-in `squeue` for SLURM, records of owners on other hosts)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from fakes import install_squeue
from project import ROOT
from transfersep.files import atomic_write_text
from transfersep.run.holder import RunLocked, read_lock
from transfersep.run.jobs import slurm_job_alive
from transfersep.run.lock import LOCK, LOST_EXIT, RunLock, follow

HOST = socket.gethostname()


def plant(run_dir: Path, **holder) -> dict:
    """A lock.json as another job would have left it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    rec = {
        "host": HOST,
        "pid": None,
        "pid_start": None,
        "slurm_job_id": None,
        "slurm_restarts": 0,
        "token": "theirs",
        "acquired": time.time(),
        "heartbeat": time.time(),
        **holder,
    }
    (run_dir / LOCK).write_text(json.dumps(rec))
    if "heartbeat" in holder:  # the file's age is a heartbeat too
        os.utime(run_dir / LOCK, (holder["heartbeat"], holder["heartbeat"]))
    return rec


@pytest.fixture
def squeue(tmp_path: Path, monkeypatch) -> Path:
    """`squeue -h -o %A|%i|%T` of a cluster that knows job 500 only."""
    return install_squeue(tmp_path, monkeypatch, "500|500|RUNNING\\n")


@pytest.fixture
def no_slurm(monkeypatch) -> None:
    for k in ("SLURM_JOB_ID", "SLURM_RESTART_COUNT", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID"):
        monkeypatch.delenv(k, raising=False)


def test_a_live_owner_keeps_it_and_is_named(tmp_path: Path, no_slurm) -> None:
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        plant(tmp_path, pid=sleeper.pid)
        with pytest.raises(RunLocked) as err:
            RunLock(tmp_path).acquire()
    finally:
        sleeper.kill()
        sleeper.wait()
    msg = str(err.value)
    assert "\n" not in msg and f"held by host {HOST} pid {sleeper.pid}" in msg
    assert read_lock(tmp_path)["token"] == "theirs"  # untouched


def test_a_dead_local_owner_is_taken_over_and_the_lock_released(tmp_path: Path, no_slurm) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    plant(tmp_path, pid=dead.pid)
    lock = RunLock(tmp_path).acquire()
    try:
        assert f"process {dead.pid} on {HOST} is gone" in lock.taken_over["why"]
        rec = read_lock(tmp_path)
        assert rec["pid"] == os.getpid() and rec["token"] == lock.record["token"]
    finally:
        lock.release()
    assert not (tmp_path / LOCK).exists()


def test_a_reused_pid_does_not_keep_a_dead_owners_lock(tmp_path: Path, no_slurm) -> None:
    sleeper = subprocess.Popen(["sleep", "60"])
    try:  # the recorded owner had this pid, but started at another time
        plant(tmp_path, pid=sleeper.pid, pid_start="1")
        lock = RunLock(tmp_path).acquire()
        lock.release()
    finally:
        sleeper.kill()
        sleeper.wait()
    assert "is gone" in lock.taken_over["why"]


def test_a_requeued_slurm_job_retakes_its_own_lock(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    plant(tmp_path, host="node-a", pid=123, slurm_job_id="42", slurm_restarts=0)
    lock = RunLock(tmp_path).acquire()
    lock.release()
    assert "earlier attempt of this SLURM job 42" in lock.taken_over["why"]
    # the same attempt elsewhere (another task of one allocation) with a fresh heartbeat is alive
    plant(tmp_path, host="node-a", pid=123, slurm_job_id="42", slurm_restarts=1)
    with pytest.raises(RunLocked):
        RunLock(tmp_path).acquire()


def test_slurm_owners_live_and_die_with_their_job(tmp_path: Path, squeue: Path, no_slurm) -> None:
    old = time.time() - 3600
    plant(tmp_path, host="node-a", pid=123, slurm_job_id="500", heartbeat=old)  # in squeue: alive
    with pytest.raises(RunLocked, match=r"\(SLURM job 500\)"):
        RunLock(tmp_path).acquire()
    plant(tmp_path, host="node-a", pid=123, slurm_job_id="777")  # fresh heartbeat, but job gone
    lock = RunLock(tmp_path).acquire()
    lock.release()
    assert "SLURM job 777 no longer exists" in lock.taken_over["why"]


def test_unverifiable_owners_die_by_heartbeat(tmp_path: Path, squeue: Path, no_slurm) -> None:
    squeue.write_text("#!/bin/sh\necho 'slurm_load_jobs error' >&2\nexit 1\n")  # squeue does not answer
    plant(tmp_path, host="node-a", pid=123, slurm_job_id="777", heartbeat=time.time() - 30)
    with pytest.raises(RunLocked):
        RunLock(tmp_path, heartbeat_s=60, stale_after_s=600).acquire()
    plant(tmp_path, host="node-b", pid=9, heartbeat=time.time() - 3600)
    lock = RunLock(tmp_path, heartbeat_s=60, stale_after_s=600).acquire()
    lock.release()
    assert "no heartbeat for" in lock.taken_over["why"]


def test_heartbeat_is_refreshed_and_a_lost_lock_is_left_alone(tmp_path: Path, no_slurm) -> None:
    lock = RunLock(tmp_path, heartbeat_s=0.05, stale_after_s=1).acquire()
    first = read_lock(tmp_path)["heartbeat"]
    deadline = time.monotonic() + 30
    while read_lock(tmp_path)["heartbeat"] == first:
        assert time.monotonic() < deadline, "heartbeat never refreshed"
        time.sleep(0.02)
    lock._stop.set()  # (the beat between its check and its write would race the planting below)
    lock._thread.join()
    plant(tmp_path, host="node-b", pid=9)  # taken by another job meanwhile
    lock.release()
    assert read_lock(tmp_path)["token"] == "theirs"


def test_bad_timing_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="lock.stale_after_s"):
        RunLock(tmp_path, heartbeat_s=60, stale_after_s=100)


def test_other_tasks_of_a_slurm_job_follow_rank_zero(tmp_path: Path, squeue: Path, monkeypatch) -> None:
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    monkeypatch.delenv("SLURM_RESTART_COUNT", raising=False)
    plant(tmp_path, host="node-a", pid=123, slurm_job_id="42")  # rank 0 of this job holds it
    follow(tmp_path, timeout_s=5, poll_s=0.01)
    plant(tmp_path, host="node-b", pid=7, slurm_job_id="500")  # another live job: skip with rank 0
    with pytest.raises(RunLocked, match="SLURM job 500"):
        follow(tmp_path, timeout_s=5, poll_s=0.01)
    (tmp_path / LOCK).unlink()  # rank 0 found the run finished and let the lock go
    (tmp_path / "status.json").write_text(json.dumps({"state": "finished"}))
    (tmp_path / "final.ckpt").write_bytes(b"x")
    follow(tmp_path, timeout_s=5, poll_s=0.01)
    (tmp_path / "final.ckpt").unlink()  # nobody takes it: a clear error, not a hang
    with pytest.raises(RuntimeError, match="did not take lock.json"):
        follow(tmp_path, timeout_s=0.05, poll_s=0.01)


def test_a_multirun_skips_a_held_grid_point_and_trains_the_rest(tmp_path: Path) -> None:
    """Two pretraining grid points in one multirun while a live job (here a sleeping process on
    this host) holds one of them: that one is skipped with one line naming it, the other trains,
    and the multirun exits 0 as it would for a finished run."""
    import sys

    root = ROOT
    held = tmp_path / "tiny" / "pretrain" / "musdb-none"
    sleeper = subprocess.Popen(["sleep", "600"])
    try:
        plant(held, pid=sleeper.pid, pid_start=None)
        env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline"}
        for k in ("SLURM_JOB_ID", "SLURM_RESTART_COUNT"):
            env.pop(k, None)
        cmd = [
            sys.executable,
            "train.py",
            "-m",
            "pretrain=musdb,slakh",
            "experiment=tiny",
            "data.generated=true",
            "logger=csv",
            "budget.pretrain=2",
            f"paths.runs_dir={tmp_path}",
        ]
        p = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=900)
    finally:
        sleeper.kill()
        sleeper.wait()
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-3000:]
    (line,) = [ln for ln in out.splitlines() if "is held by" in ln]
    assert str(held) in line and f"host {HOST} pid {sleeper.pid}" in line
    assert not (held / "status.json").exists() and not (held / "checkpoints").exists()  # untouched
    assert read_lock(held)["token"] == "theirs"
    done = json.loads((tmp_path / "tiny" / "pretrain" / "slakh-none" / "status.json").read_text())
    assert done["state"] == "finished"


def test_a_file_system_without_hard_links_falls_back_to_exclusive_create(tmp_path: Path, monkeypatch, no_slurm) -> None:
    def no_link(src, dst):  # noqa: ANN001
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_link)
    lock = RunLock(tmp_path).acquire()
    assert read_lock(tmp_path)["token"] == lock.record["token"]
    lock.release()
    assert not (tmp_path / LOCK).exists()
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        plant(tmp_path, pid=sleeper.pid)
        with pytest.raises(RunLocked):
            RunLock(tmp_path).acquire()
    finally:
        sleeper.kill()
        sleeper.wait()


class Lost(Exception):
    pass


def _raise(line: str) -> None:
    raise Lost(line)


def test_the_heartbeat_never_overwrites_a_takers_record_and_writes_are_refused(tmp_path: Path, no_slurm) -> None:
    lost: list[str] = []
    lock = RunLock(tmp_path, heartbeat_s=0.05, stale_after_s=1, on_lost=lost.append).acquire()
    try:
        taker = plant(tmp_path, host="node-b", pid=9)  # another job took the directory over
        text = (tmp_path / LOCK).read_text()
        deadline = time.monotonic() + 30
        while not lost:
            assert time.monotonic() < deadline, "the heartbeat never noticed the takeover"
            time.sleep(0.02)
        assert (tmp_path / LOCK).read_text() == text and read_lock(tmp_path)["token"] == taker["token"]
        (line,) = lost
        assert "\n" not in line and "was taken over by host node-b pid 9" in line and f"status {LOST_EXIT}" in line
        with pytest.raises(RuntimeError, match="was taken over by host node-b"):
            atomic_write_text(tmp_path / "status.json", "{}")
        assert sorted(p.name for p in tmp_path.iterdir()) == [LOCK]  # nothing written, no temporary file
        atomic_write_text(tmp_path.parent / "elsewhere.txt", "x")  # other directories are not its business
    finally:
        lock.release()
    assert read_lock(tmp_path)["token"] == taker["token"]


OWNER = """
import socket, sys, time
from pathlib import Path
socket.gethostname = lambda: "node-a"  # another host: only its heartbeat says it is alive
from transfersep.files import atomic_write_text
from transfersep.run.lock import RunLock
run = Path(sys.argv[1])
RunLock(run, heartbeat_s=0.1, stale_after_s=0.6).acquire()
i = 0
while True:  # a training loop: a checkpoint-like write, then work
    atomic_write_text(run / "progress.txt", str(i))
    i += 1
    time.sleep(0.3)
"""


def test_a_stopped_owner_taken_over_stops_itself_when_resumed(tmp_path: Path, no_slurm) -> None:
    """SIGSTOP past the heartbeat limit, a takeover by another job, SIGCONT: the old owner ends at
    once with one line and exit status LOST_EXIT, and writes nothing more into the directory."""
    import signal
    import sys

    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(run)], env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while not (run / "progress.txt").exists() or (run / "progress.txt").read_text() in ("", "0"):
            assert time.monotonic() < deadline and owner.poll() is None, "the owner never started"
            time.sleep(0.01)
        os.kill(owner.pid, signal.SIGSTOP)  # just after a write: stopped in its work, not mid-write
        before = {p.name: p.read_bytes() for p in run.iterdir() if p.name != LOCK}
        taker = None
        while taker is None:
            assert time.monotonic() < deadline, "the stopped owner's lock was never taken over"
            try:
                taker = RunLock(run, heartbeat_s=0.1, stale_after_s=0.6, on_lost=_raise).acquire()
            except RunLocked:
                time.sleep(0.1)
        try:
            assert "no heartbeat for" in taker.taken_over["why"]
            os.kill(owner.pid, signal.SIGCONT)
            _, err = owner.communicate(timeout=60)
            assert owner.returncode == LOST_EXIT
            (line,) = err.strip().splitlines()
            assert line.startswith(f"error: {run} was taken over by host {HOST} pid {os.getpid()}")
            assert {p.name: p.read_bytes() for p in run.iterdir() if p.name != LOCK} == before
            assert read_lock(run)["token"] == taker.record["token"] and taker.owned()
        finally:
            taker.release()
    finally:
        if owner.poll() is None:
            os.kill(owner.pid, signal.SIGCONT)
            owner.kill()
            owner.wait()


def test_a_requeued_slurm_job_gets_its_lock_back_while_others_wait(tmp_path: Path, monkeypatch) -> None:
    """Job 42 was requeued: SLURM lists it pending again; its earlier attempt's lock (stale
    heartbeat) holds against job 43 and is retaken by job 42's next attempt."""
    squeue = install_squeue(tmp_path, monkeypatch, "42|42|PENDING\\n")
    run = tmp_path / "run"
    plant(run, host="node-a", pid=123, slurm_job_id="42", slurm_restarts=0, heartbeat=time.time() - 3600)
    monkeypatch.setenv("SLURM_JOB_ID", "43")
    monkeypatch.delenv("SLURM_RESTART_COUNT", raising=False)
    with pytest.raises(RunLocked, match=r"\(SLURM job 42\)"):
        RunLock(run).acquire()
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    lock = RunLock(run).acquire()
    lock.release()
    assert "earlier attempt of this SLURM job 42" in lock.taken_over["why"]
    # what squeue says of a job, asked by id
    assert slurm_job_alive("42") is True and slurm_job_alive("777") is False  # not listed: gone
    squeue.write_text("#!/bin/sh\nprintf '42|42|COMPLETED\\n'\n")
    assert slurm_job_alive("42") is False
    squeue.write_text("#!/bin/sh\necho 'slurm_load_jobs error: Invalid job id specified' >&2\nexit 1\n")
    assert slurm_job_alive("42") is False
    squeue.write_text("#!/bin/sh\necho 'Unable to contact slurm controller' >&2\nexit 1\n")
    assert slurm_job_alive("42") is None
