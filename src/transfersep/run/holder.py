"""Who holds a run directory: the record of its ``lock.json`` and whether that owner is dead (the rules
are ``transfersep.run.lock``'s module doc). Read by the lock itself and by ``transfersep status``."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from transfersep.files import LOCK
from transfersep.run.jobs import identity, pid_alive, pid_start, slurm_job_alive


class RunLocked(RuntimeError):
    """Another live job owns the run directory; the message says who."""

    def __init__(self, run_dir: Path, holder: dict[str, Any]):
        super().__init__(
            f"{run_dir} is held by {describe(holder)}; skipping it (launch it again once "
            f"that job has ended, or remove {Path(run_dir) / LOCK} if it is certainly dead)"
        )
        self.holder = holder


def read_lock(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The lock's record, or None when the directory is not locked. An unreadable record counts as
    an owner known only by the file's age."""
    path = Path(run_dir) / LOCK
    try:
        text = path.read_text()
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return None
    try:
        holder = json.loads(text)
        if not isinstance(holder, dict):
            raise ValueError("not an object")
    except ValueError:
        holder = {"unreadable": True}
    holder["heartbeat"] = max(float(holder.get("heartbeat") or 0), mtime)
    return holder


def describe(holder: dict[str, Any], now: float | None = None) -> str:
    """``host h pid p (SLURM job j), heartbeat 12 s ago``"""
    now = time.time() if now is None else now
    who = f"host {holder.get('host', '?')} pid {holder.get('pid', '?')}"
    if holder.get("slurm_job_id"):
        who += f" (SLURM job {holder.get('slurm_array_id') or holder['slurm_job_id']})"
    age = max(0.0, now - float(holder.get("heartbeat") or 0))
    return f"{who}, heartbeat {age:.0f} s ago"


def owner_dead(holder: dict[str, Any], stale_after_s: float, mine: dict[str, Any] | None = None) -> str | None:
    """Why the owner of ``holder`` is dead, or None while it may be alive (rules in the module doc)."""
    mine = mine or identity()
    job = holder.get("slurm_job_id")
    if job and job == mine.get("slurm_job_id") and int(holder.get("slurm_restarts") or 0) < mine["slurm_restarts"]:
        return f"an earlier attempt of this SLURM job {job} (requeued)"
    pid = holder.get("pid")
    if holder.get("host") == mine["host"] and isinstance(pid, int):
        if pid == mine["pid"]:
            return "left by this process"
        start = holder.get("pid_start")
        if not pid_alive(pid) or (start and pid_start(pid) not in (None, start)):
            return f"process {pid} on {holder['host']} is gone"
        return None
    if job and job != mine.get("slurm_job_id"):
        alive = slurm_job_alive(holder.get("slurm_array_id") or job)
        if alive is False:
            return f"SLURM job {job} no longer exists"
        if alive:
            return None
    age = time.time() - float(holder.get("heartbeat") or 0)
    if age > stale_after_s:
        return f"no heartbeat for {age:.0f} s (more than {stale_after_s:.0f} s)"
    return None
