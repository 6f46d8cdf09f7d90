"""One job per run directory: ``lock.json``, taken before a run writes anything in its directory.

Launching a study again while it runs would otherwise let two jobs train into one directory and
overwrite each other's ``last.ckpt``. ``flock``/``fcntl`` locks do not serve here: on the shared
file systems of clusters they are per client, unsupported or silently local (NFS without lockd,
some Lustre/BeeGFS mounts), and a lock held by a crashed node is never released. The lock is a
file created with ``link()`` (atomic and exclusive on local disks, NFSv2+, Lustre, GPFS, BeeGFS:
the classic NFS-safe recipe; the content is complete before the name appears)::

    lock.json   {"host", "pid", "pid_start", "slurm_job_id", "slurm_array_id", "slurm_restarts",
                 "token", "acquired", "heartbeat"}      (times: Unix seconds)

The owner's heartbeat is the file's modification time: every ``heartbeat_s`` seconds (a thread) it
checks that the lock is still its own (the token) and touches the file (``os.utime``), and it
removes the file when it ends, however it ends short of SIGKILL. The heartbeat never rewrites the
record, so it cannot overwrite a taker's: an owner that checked just before a takeover at worst
refreshes the taker's file once, and sees the taker's token at its next check.

**A job that lost its lock stops.** The heartbeat thread, and every atomic write into the run
directory (status, checkpoints, scores, result, curve, package: ``transfersep.files`` guards), check
the token first; when the lock is another job's the job prints one line on stderr (not in
``train.log``, which is in the run directory) and ends at once with exit status ``LOST_EXIT`` (3),
writing nothing more there. The race left: a write whose check passed an instant before a takeover
still lands (one rename); the job stops at its next check.

A lock is taken over when its owner is dead, judged by the surest evidence this host has:

1. the same SLURM job with a higher ``SLURM_RESTART_COUNT`` (a requeued or preempted job retakes
   its own lock);
2. an owner on this host: its process is gone (or the pid now belongs to a newer process);
3. an owner in SLURM: ``squeue --all --jobs <id>`` answers and lists the job as ended, or the
   controller no longer knows it (a pending, running or requeued job holds its lock:
   ``jobs.slurm_job_alive``);
4. otherwise (another host, no SLURM, or ``squeue`` silent): a heartbeat older than
   ``stale_after_s``.

Two relaunches that find the same dead owner take turns through ``lock.json.break`` (created
exclusively; one left by a killed taker is ignored after a minute), so only one replaces it.

In a distributed job only rank 0 takes the lock. Ranks Lightning starts itself come after it; the
other tasks of a multi-task SLURM job (``trainer=ddp`` over ``srun``) start beside it and
``follow`` it: they go on once the lock is their job's, and skip with it when another job holds it.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from transfersep import files as atomic
from transfersep.files import LOCK
from transfersep.run.holder import RunLocked, describe, owner_dead, read_lock
from transfersep.run.jobs import identity
from transfersep.run.records import finished

BREAK_STALE_S = 60.0
LOST_EXIT = 3  # exit status of a job whose run directory was taken over
log = logging.getLogger("transfersep")


class RunLock:
    """Ownership of ``run_dir`` for one run: ``acquire()`` (raises ``RunLocked``), then ``release()``;
    a daemon thread refreshes the heartbeat in between."""

    def __init__(
        self,
        run_dir: str | os.PathLike,
        heartbeat_s: float = 60.0,
        stale_after_s: float = 600.0,
        on_lost: Callable[[str], None] | None = None,
    ):
        if heartbeat_s <= 0 or stale_after_s <= 2 * heartbeat_s:
            raise ValueError(f"lock.stale_after_s ({stale_after_s}) must exceed twice lock.heartbeat_s ({heartbeat_s})")
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK
        self.heartbeat_s, self.stale_after_s = float(heartbeat_s), float(stale_after_s)
        self.record: dict[str, Any] = {}
        self.taken_over: dict[str, Any] | None = None  # the dead owner's record and why, if any
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._on_lost = on_lost or _exit_lost  # tests pass their own; a job ends at once

    # -- files ---------------------------------------------------------------------------------
    def _tmp(self) -> Path:
        self.record["heartbeat"] = time.time()
        tmp = self.run_dir / f".{LOCK}.{self.record['token']}.{uuid.uuid4().hex[:8]}"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.record, f)
            f.flush()
            os.fsync(f.fileno())
        return tmp

    def _link(self) -> bool:
        tmp = self._tmp()
        try:
            os.link(tmp, self.path)
            return True
        except FileExistsError:
            return False
        except OSError as e:
            if os.stat(tmp).st_nlink == 2:  # NFS may report a link that did happen as failed
                return True
            if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS):
                raise
            return self._create()  # a file system without hard links (some FUSE/SMB mounts)
        finally:
            tmp.unlink(missing_ok=True)

    def _create(self) -> bool:
        """O_CREAT|O_EXCL, then the record: a reader in between sees an unreadable (held) lock."""
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(self.record, f)
            f.flush()
            os.fsync(f.fileno())
        return True

    def _replace(self, expect_token: str | None) -> bool:
        """Put our record in place of the lock whose token is ``expect_token``, one taker at a time."""
        brk = self.run_dir / f"{LOCK}.break"
        try:
            os.close(os.open(brk, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        except FileExistsError:
            try:
                if time.time() - brk.stat().st_mtime > BREAK_STALE_S:
                    brk.unlink(missing_ok=True)  # left by a taker killed mid-way
            except FileNotFoundError:
                pass
            return False
        try:
            current = read_lock(self.run_dir)
            if current is None or current.get("token") != expect_token:
                return False  # changed meanwhile: look again
            os.replace(self._tmp(), self.path)
            return True
        finally:
            brk.unlink(missing_ok=True)

    # -- ownership -----------------------------------------------------------------------------
    def acquire(self) -> RunLock:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.record = {**identity(), "token": uuid.uuid4().hex, "acquired": time.time()}
        for _ in range(50):
            if self._link():
                break
            holder = read_lock(self.run_dir)
            if holder is None:
                continue  # released meanwhile
            why = owner_dead(holder, self.stale_after_s, self.record)
            if why is None:
                raise RunLocked(self.run_dir, holder)
            if self._replace(holder.get("token")):
                self.taken_over = {"holder": holder, "why": why}
                log.warning("%s: took over the lock of %s: %s", self.run_dir, describe(holder), why)
                break
            time.sleep(0.05 + 0.1 * random.random())  # two takers out of step
        else:
            raise RuntimeError(
                f"{self.path}: could not take the lock after 50 attempts; remove it if no job runs there"
            )
        self._stop.clear()
        self._root = self.run_dir.resolve()
        atomic.add_guard(self._guard)
        self._thread = threading.Thread(target=self._beat, name="transfersep-lock-heartbeat", daemon=True)
        self._thread.start()
        return self

    def owned(self) -> bool:
        cur = read_lock(self.run_dir)
        return bool(cur and cur.get("token") == self.record.get("token"))

    def _lost(self) -> str:
        """The lock is another job's (or gone): hand the one line to ``on_lost`` (which ends the job)."""
        self._stop.set()
        holder = read_lock(self.run_dir)
        taker = describe(holder) if holder else "nobody (lock.json was removed)"
        line = (
            f"error: {self.run_dir} was taken over by {taker}; this job no longer owns it and stops "
            f"without writing anything more there (exit status {LOST_EXIT})"
        )
        self._on_lost(line)
        return line

    def _guard(self, path: Path, tmp: Path | None) -> None:
        """Before an atomic write: a write into a run directory this job lost is never made."""
        if self._root not in path.resolve().parents or self.owned():
            return
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise RuntimeError(self._lost())  # only reached when on_lost returns (tests)

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                if not self.owned():
                    self._lost()
                    return
                os.utime(self.path)  # the heartbeat: the file's time, never its record
            except FileNotFoundError:
                self._lost()
                return
            except OSError as e:  # a file-system hiccup: try again at the next beat
                log.warning("%s: heartbeat not written (%s)", self.path, e)

    def release(self) -> None:
        self._stop.set()
        atomic.remove_guard(self._guard)
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self.record and self.owned():
            self.path.unlink(missing_ok=True)  # (a takeover between the check and the unlink: see above)

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _exit_lost(line: str) -> None:
    """End the process now: no ``finally``, no callbacks, no logger flush into the run directory."""
    os.write(2, (line + "\n").encode())
    os._exit(LOST_EXIT)


def rank() -> int:
    """This process's global rank (0 outside distributed jobs), as Lightning reads it from the
    environment (RANK, LOCAL_RANK, SLURM_PROCID)."""
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    return int(getattr(rank_zero_only, "rank", 0) or 0)


def follow(run_dir: str | os.PathLike, timeout_s: float, poll_s: float = 1.0) -> None:
    """For a task of a multi-task SLURM job other than rank 0: return once rank 0 owns the lock
    (or found the run finished and let it go); raise ``RunLocked`` when another live job holds it."""
    run_dir, mine = Path(run_dir), identity()
    deadline = time.monotonic() + timeout_s
    while True:
        holder = read_lock(run_dir)
        if (
            holder
            and holder.get("slurm_job_id") == mine["slurm_job_id"]
            and int(holder.get("slurm_restarts") or 0) == mine["slurm_restarts"]
        ):
            return
        if holder and owner_dead(holder, timeout_s, mine) is None:
            raise RunLocked(run_dir, holder)
        if holder is None and finished(run_dir):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{run_dir}: rank 0 of SLURM job {mine['slurm_job_id']} did not take {LOCK} within {timeout_s:.0f} s"
            )
        time.sleep(poll_s)


@contextmanager
def own_run_dir(
    run_dir: str | os.PathLike, heartbeat_s: float = 60.0, stale_after_s: float = 600.0
) -> Iterator[RunLock | None]:
    """Hold ``run_dir`` for the block (rank 0), or follow rank 0's hold (other tasks of a SLURM
    job); raises ``RunLocked`` when another live job owns it."""
    if rank() == 0:
        lock = RunLock(run_dir, heartbeat_s, stale_after_s).acquire()
        try:
            yield lock
        finally:
            lock.release()
        return
    if int(os.environ.get("SLURM_NTASKS") or 1) > 1 and os.environ.get("SLURM_PROCID"):
        follow(run_dir, stale_after_s)
    yield None
