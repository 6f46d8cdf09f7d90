"""Which process or SLURM job a run belongs to, and whether it is still alive: the one place that
reads a process's identity (host, pid, its start time, SLURM job ids).

``job_info()`` goes into every ``status.json`` (see ``run.records.write_status``) so that the status
command can tell a run that is still running from one whose job died without a word
(SIGKILL, node failure, a time limit without requeue): the latter is shown as ``interrupted``.
"""

from __future__ import annotations

import os
import socket
import subprocess
from typing import Any


def pid_start(pid: int) -> str | None:
    """The start time of a process (clock ticks since boot): tells a reused pid from its first owner."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def identity() -> dict[str, Any]:
    """This process: host, pid, its start time and, under SLURM, the job ids and restart count
    (what a lock records of its owner, and what tells a requeued job from its earlier attempt)."""
    env = os.environ
    info: dict[str, Any] = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "pid_start": pid_start(os.getpid()),
        "slurm_job_id": env.get("SLURM_JOB_ID"),
        "slurm_restarts": int(env.get("SLURM_RESTART_COUNT") or 0),
    }
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        info["slurm_array_id"] = f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    return info


def job_info() -> dict[str, Any]:
    """For ``status.json``: host, pid and, under SLURM / submitit, the job ids, the restart count
    where SLURM gives one, and the job's log files."""
    env, ident = os.environ, identity()
    info: dict[str, Any] = {k: ident[k] for k in ("host", "pid", "slurm_job_id")}
    if "slurm_array_id" in ident:
        info["slurm_array_id"] = ident["slurm_array_id"]
    if env.get("SLURM_RESTART_COUNT"):
        info["slurm_restarts"] = ident["slurm_restarts"]
    if env.get("SUBMITIT_FOLDER") and env.get("SUBMITIT_EXECUTOR") == "slurm":
        try:
            import submitit

            paths = submitit.JobEnvironment().paths
            info["submitit_logs"] = [str(paths.stdout), str(paths.stderr)]
        except Exception:  # bookkeeping must never fail a run
            pass
    return info


def slurm_states(job_ids: list[str], timeout_s: float = 30.0) -> dict[str, str] | None:
    """``{job id: SLURM state}`` for the jobs squeue still knows; None where squeue cannot answer
    (no SLURM client here, or the controller is down), so liveness stays unknown."""
    if not job_ids:
        return {}
    try:
        p = subprocess.run(["squeue", "-h", "-o", "%A|%i|%T"], capture_output=True, text=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if p.returncode != 0:
        return None
    known: dict[str, str] = {}
    for line in p.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 3:
            known[parts[0]] = parts[2]  # plain job id (SLURM_JOB_ID)
            known[parts[1]] = parts[2]  # array form <array job>_<task>
    return {j: known[j] for j in job_ids if j in known}


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (a zombie counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


# SLURM states in which a job may still run or come back (a requeued job keeps its id)
SLURM_ALIVE = frozenset(
    {
        "PENDING",
        "CONFIGURING",
        "RUNNING",
        "COMPLETING",
        "SUSPENDED",
        "STOPPED",
        "SIGNALING",
        "STAGE_OUT",
        "RESIZING",
        "REQUEUED",
        "REQUEUE_HOLD",
        "REQUEUE_FED",
        "RESV_DEL_HOLD",
        "SPECIAL_EXIT",
    }
)


def slurm_job_alive(job_id: str, timeout_s: float = 30.0) -> bool | None:
    """Whether SLURM job ``job_id`` (plain or ``<array>_<task>``) may still run: asked by id with
    ``squeue --all --jobs`` (``--all``: hidden partitions too), alive while it is listed in a state
    of ``SLURM_ALIVE`` (pending, running, requeued …); dead when listed as ended or unknown to the
    controller ("Invalid job id"); None when squeue cannot answer (liveness unknown)."""
    cmd = ["squeue", "--all", "--jobs", str(job_id), "-h", "-o", "%A|%i|%T"]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if p.returncode != 0:
        return False if "invalid job id" in p.stderr.lower() else None
    for line in p.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 3 and str(job_id) in parts[:2]:
            return parts[2] in SLURM_ALIVE
    return False
