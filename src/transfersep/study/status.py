"""Where a study stands: every grid point as finished / running / failed / stale / interrupted / missing.

    transfersep status RUNS/STUDY                     # the grid points the study launched
    transfersep status RUNS/STUDY --full-grid         # the full grid of sweeps/grid.yaml
    transfersep status RUNS/STUDY downstream=bach10   # narrowed like the sweeps
    transfersep status RUNS/STUDY --only failed,stale --json

The grid a study is expected to have is, as for the report, what it launched: the (pretrain,
augment) pairs of its runs, crossed with the fine-tune modes and downstream sets it used, one
baseline per downstream set, and the zero-shot probes when it has any (a study of five runs is
not 118 runs short of the paper's grid). ``--full-grid`` expects every grid point of sweeps/.

States (from each run directory's ``status.json``):

- ``finished``: status finished and ``final.ckpt`` present (``result.json`` for a zero-shot probe,
  which trains nothing); a relaunch skips it.
- ``running``: status running and its job alive: the SLURM job is still in ``squeue`` (pending,
  running or requeued) or, for a local run, its process exists. Where neither can be checked
  (no ``squeue`` here, a run on another host) it stays ``running`` with a note. The holder of the
  run directory's lock (host, pid, SLURM job, heartbeat age) is shown.
- ``stale``: a fine-tune built on a pretrained model that is no longer the one standing at its
  parent (the pretraining was redone, or ``init_from`` now holds other weights; see
  ``provenance``). A relaunch sets its outputs aside and trains it again; the report leaves it out.
  "orphaned" in its detail: the parent is gone, or has no finished weights (a retrain in progress
  or interrupted); train the parent, then relaunch.
- ``interrupted``: stopped by Ctrl-C (status "interrupted", written as it stopped); or status
  running but its SLURM job is gone from ``squeue`` or its local process died (SIGKILL, node
  failure, a time limit without requeue); also "finished" without ``final.ckpt``. Nothing will
  finish it: relaunch the grid, it resumes from ``last.ckpt``.
- ``failed``: the run raised an error (shown, with the log files to read).
- ``missing``: never started (no ``status.json``).

A relaunch (``python train.py -m +sweeps=...`` or ``transfersep study``) reruns every
state except finished. Runs found in the study directory outside the grid are listed too.
Given a folder that holds one study (the runs folder), that study is shown; a folder holding
several studies lists them and exits 2.
Exit status: 0 when every listed grid point is finished, 1 otherwise (nothing launched included;
2 on bad arguments).
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from transfersep.files import LAST_CKPT, STATUS, TRAIN_LOG, read_status
from transfersep.run.jobs import pid_alive, slurm_states
from transfersep.run.point import REPLICATE_KEYS, GridPoint
from transfersep.run.records import done_path, finished
from transfersep.study.folders import SeveralStudies, resolve_study
from transfersep.study.grid import grid_points, load_grid, override_key, stage_names

STATES = ("finished", "running", "failed", "stale", "interrupted", "missing")


@dataclass
class RunState:
    subdir: str
    state: str
    grid_point: dict
    in_grid: bool = True
    detail: str = ""
    logs: list[str] = field(default_factory=list)


def _logs(run_dir: Path, st: dict) -> list[str]:
    cands = [st.get("log") or str(run_dir / TRAIN_LOG), *(st.get("submitit_logs") or [])]
    return [p for p in dict.fromkeys(cands) if p and Path(p).is_file()]


def _age(path: Path) -> str:
    if not path.exists():
        return "no checkpoint yet"
    mins = (time.time() - path.stat().st_mtime) / 60
    return f"{path.name} written {mins:.0f} min ago"


def _classify(run_dir: Path, st: dict | None, squeue: dict[str, str] | None) -> tuple[str, str]:
    if st is None:
        return "missing", ""
    state = st.get("state")
    if state == "finished":
        if finished(run_dir, st):
            return "finished", ""
        return "interrupted", f"status finished but {done_path(run_dir, st).name} is gone"
    if state == "failed":
        return "failed", str(st.get("error") or "")
    if state == "interrupted":
        step = st.get("interrupted_at_step")
        at = f" at step {step}" if step is not None else ""
        return "interrupted", f"stopped by Ctrl-C{at}; {_age(run_dir / LAST_CKPT)}; a relaunch resumes"
    if state != "running":
        return "failed", f"unknown state {state!r} in {STATUS}"
    age = _age(run_dir / LAST_CKPT)
    job = st.get("slurm_job_id")
    if job:
        label = st.get("slurm_array_id") or job
        if squeue is None:
            return "running", f"SLURM job {label} (not verified: squeue does not answer here); {age}"
        if job in squeue:
            return "running", f"SLURM job {label} {squeue[job]}; {age}"
        return "interrupted", f"SLURM job {label} no longer exists; {age}"
    host, pid = st.get("host"), st.get("pid")
    if pid is None:
        return "running", f"not verified (no pid recorded); {age}"
    if host == socket.gethostname():
        if pid_alive(int(pid)):
            return "running", f"pid {pid}; {age}"
        return "interrupted", f"process {pid} on {host} is gone; {age}"
    return "running", f"pid {pid} on {host} (not verified from here); {age}"


def _provenance_and_lock(run_dir: Path, st: dict | None, state: str, detail: str) -> tuple[str, str]:
    """A run built on a parent that was redone is stale whatever it reached (a live job finishes
    first); a running run names the holder of its lock."""
    from transfersep.run.holder import describe, read_lock
    from transfersep.run.provenance import stale_reason

    if st is None:
        return state, detail
    if state == "running":
        holder = read_lock(run_dir)
        return state, f"{detail}; lock: {describe(holder) if holder else 'none'}"
    why = stale_reason(run_dir, st.get("parent"))
    if not why:
        return state, detail
    todo = "train its parent, then relaunch it" if why.startswith("orphaned") else "a relaunch trains it again"
    return "stale", f"{why}; {todo}"


def replicates_launched(study_dir: Path) -> list[str]:
    """``seed=...`` / ``fold=...`` overrides naming every replicate the study's runs record (none
    when it trained replicate 0 only, the paper's grid)."""
    found: dict[str, set[int]] = {k: {0} for k in REPLICATE_KEYS}
    for f in study_dir.glob(f"*/*/{STATUS}"):
        gp = (read_status(f.parent) or {}).get("grid_point")
        if isinstance(gp, dict):
            for k in REPLICATE_KEYS:
                found[k].add(int(gp.get(k) or 0))
    return [f"{k}={','.join(map(str, sorted(v)))}" for k, v in found.items() if v != {0}]


def _recorded_point(record: object) -> GridPoint | None:
    """The grid point a run's ``status.json`` records, or None where it records none that names a run."""
    if not isinstance(record, dict) or not {"stage", "pretrain", "augment", "finetune", "downstream"} <= set(record):
        return None
    try:
        gp = GridPoint.from_record(record)
        return gp if gp.stage == record["stage"] else None
    except ValueError:  # PlanError included: values that name no run
        return None


def launched(points: list[GridPoint], study_dir: Path) -> list[GridPoint]:
    """The grid points of ``points`` the study launched, as the report expects them
    (``report.results.expected_keys``): pairs x fine-tune modes x downstream sets of its runs."""
    facts = [gp for gp in points if (study_dir / gp.subdir / STATUS).is_file()]
    from_packages: set[tuple[str, str]] = set()  # pairs whose runs loaded a model file (init_from), no run
    from_runs: set[tuple[str, str]] = set()
    for f in study_dir.glob("*/*/status.json"):  # runs outside the grid tell what was launched too
        st = read_status(f.parent) or {}
        gp = _recorded_point(st.get("grid_point"))
        if gp is None:
            continue
        facts.append(gp)
        parent = st.get("parent")
        pair = (gp.pretraining, gp.augment)
        if gp.stage in ("finetune", "zeroshot") and isinstance(parent, dict) and parent.get("kind") != "run":
            from_packages.add(pair)
        elif gp.stage in ("pretrain", "finetune", "zeroshot"):
            from_runs.add(pair)
    pairs = {(g.pretraining, g.augment) for g in facts if g.stage in ("pretrain", "finetune", "zeroshot")}
    # a fine-tune built on a given model file (init_from) expects no pretraining run of its own, as
    # the report expects none: only runs of the study that start from its runs make one expected
    pretrained = pairs - (from_packages - from_runs)
    downs = {g.downstream for g in facts if g.stage in ("finetune", "baseline", "zeroshot")}
    modes = {g.finetune for g in facts if g.stage == "finetune"} or set(load_grid().axes["finetune"])
    zeroshot = any(g.stage == "zeroshot" for g in facts)
    # the pretraining lengths its fine-tunes and probes started from (the paper's end when none)
    lengths = {g.pretrain_steps for g in facts if g.stage in ("finetune", "zeroshot")} or {"end"}

    def expected(gp: GridPoint) -> bool:
        pair, stage = (gp.pretraining, gp.augment) in pairs, gp.stage
        if stage == "pretrain":
            return (gp.pretraining, gp.augment) in pretrained
        if stage == "baseline":
            return gp.downstream in downs
        if gp.pretrain_steps not in lengths:
            return False
        return pair and gp.downstream in downs and (gp.finetune in modes if stage == "finetune" else zeroshot)

    return [gp for gp in points if expected(gp)]


def study_status(
    study_dir: str | Path, sweeps: Sequence[str] | None = None, overrides: Sequence[str] = (), full: bool = False
) -> list[RunState]:
    """One ``RunState`` per grid point the study launched (with ``full``: every grid point of the
    stages ``sweeps``, default all), narrowed by ``overrides``, then any other run found in the
    study's stage folders."""
    study_dir = Path(study_dir)
    if not full and not any(override_key(o) in REPLICATE_KEYS for o in overrides):
        overrides = [*overrides, *replicates_launched(study_dir)]  # every seed and fold it trained
    points: list[GridPoint] = grid_points(sweeps, overrides)
    if not full:
        points = launched(points, study_dir)
    subdirs = {gp.subdir: gp.as_dict() for gp in points}
    statuses = {s: read_status(study_dir / s) for s in subdirs}
    stages = set(stage_names())
    for f in sorted(study_dir.glob(f"*/*/{STATUS}")):  # runs outside the grid (e.g. downstream=stems)
        sub = f.parent.relative_to(study_dir).as_posix()
        if sub not in subdirs and f.parent.parent.name in stages:
            statuses[sub] = read_status(f.parent)
    for sub in _baselines_outside_the_grid(statuses, subdirs):
        statuses[sub] = None  # missing, as the report expects it
    jobs = [
        st["slurm_job_id"] for st in statuses.values() if st and st.get("state") == "running" and st.get("slurm_job_id")
    ]
    squeue = slurm_states(jobs) if jobs else {}
    out = []
    for sub, st in statuses.items():
        gp = subdirs.get(sub) or ((st or {}).get("grid_point") or {})
        state, detail = _classify(study_dir / sub, st, squeue)
        state, detail = _provenance_and_lock(study_dir / sub, st, state, detail)
        logs = _logs(study_dir / sub, st) if st and state in ("failed", "interrupted", "running") else []
        out.append(RunState(sub, state, gp, sub in subdirs, detail, logs))
    return out


def _baselines_outside_the_grid(statuses: dict[str, dict | None], subdirs: dict[str, dict]) -> list[str]:
    """The baseline of every downstream set outside the grid (``downstream=stems``) that a run of the
    study fine-tuned or probed: the report expects one per downstream set it finds, so status does too."""
    grid_downs = set(load_grid().axes["downstream"])
    wanted = []
    for st in statuses.values():
        gp = (st or {}).get("grid_point") or {}
        d = gp.get("downstream")
        if gp.get("stage") in ("finetune", "zeroshot") and d and d != "none" and d not in grid_downs:
            rep = {k: int(gp.get(k) or 0) for k in REPLICATE_KEYS}
            sub = GridPoint("none", "none", "whole", str(d), **rep).subdir
            if sub not in statuses and sub not in subdirs and sub not in wanted:
                wanted.append(sub)
    return wanted


def format_table(rows: list[RunState], study_dir: Path, states: set[str] | None = None) -> str:
    """A count of every state, then one line per run whose state is in ``states`` (all if None)
    with the log files of failed and stale runs."""
    counts = {s: sum(r.state == s for r in rows) for s in STATES}
    head = f"{study_dir}: {len(rows)} runs - " + ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    reps = {k: {int((r.grid_point or {}).get(k) or 0) for r in rows} for k in REPLICATE_KEYS}
    if any(len(v) > 1 for v in reps.values()):  # every grid point repeated: say how often
        head += "; replicates of each grid point: " + " x ".join(
            f"{k} {','.join(map(str, sorted(v)))}" for k, v in reps.items()
        )
    shown = [r for r in rows if states is None or r.state in states]
    if not shown:
        return head
    width = max(len(r.subdir) for r in shown)
    lines = [head, f"{'STATE':9} {'RUN':{width}}  DETAIL"]
    for r in shown:
        extra = "" if r.in_grid else "  [outside the grid]"
        lines.append(f"{r.state:9} {r.subdir:{width}}  {r.detail.splitlines()[-1] if r.detail else ''}{extra}")
        if r.state in ("failed", "interrupted"):
            for p in r.logs:
                lines.append(f"{'':9} {'':{width}}  log: {p}")
    return "\n".join(lines)


def main(argv: list[str], parser: argparse.ArgumentParser) -> int:
    """The verb: this module's description, its options and Hydra-style overrides in any order."""
    parser.description = __doc__
    return run_from_args(configure_parser(parser).parse_intermixed_args(argv))


def configure_parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("study_dir", type=Path, help="<paths.runs_dir>/<study>")
    p.add_argument("overrides", nargs="*", help="narrow the grid like a sweep, e.g. downstream=bach10")
    p.add_argument("--sweeps", default=None, help="comma-separated stages of sweeps/grid.yaml to list (default: all)")
    p.add_argument("--only", default="", help=f"comma-separated states to list ({','.join(STATES)})")
    p.add_argument("--json", action="store_true", help="one JSON object per line instead of a table")
    p.add_argument(
        "--full-grid", action="store_true", help="expect every grid point of sweeps/ (default: what the study launched)"
    )
    return p


def run_from_args(args: argparse.Namespace) -> int:
    if not args.study_dir.is_dir():
        print(f"error: {args.study_dir} is not a directory (expected <paths.runs_dir>/<study>)", file=sys.stderr)
        return 2
    try:  # a runs folder instead of one study: never mix the runs of several studies
        args.study_dir = resolve_study(args.study_dir)
    except SeveralStudies as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    only = {s for s in args.only.split(",") if s}
    if only - set(STATES):
        print(f"error: --only takes {', '.join(STATES)}; got {sorted(only - set(STATES))}", file=sys.stderr)
        return 2
    stages = [s for s in args.sweeps.split(",") if s] if args.sweeps else None
    rows = study_status(args.study_dir, stages, args.overrides, args.full_grid)
    if not rows:
        print(f"{args.study_dir}: no run launched yet; --full-grid lists every grid point of sweeps/grid.yaml")
        return 1
    if args.json:
        for r in rows:
            if not only or r.state in only:
                print(json.dumps(asdict(r)))
    else:
        print(format_table(rows, args.study_dir, only or None))
    # outside the grid only an expected baseline can be missing: it counts, as in the report
    return 0 if all(r.state == "finished" for r in rows if r.in_grid or r.state == "missing") else 1
