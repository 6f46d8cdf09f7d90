"""The whole study in order: pretraining grid -> zero-shot probes -> fine-tuning grid -> baselines.

    transfersep study                                  # locally, one run after another
    transfersep study --launcher slurm                 # every stage as SLURM job arrays
    transfersep study --launcher slurm downstream=bach10 study=mine paths.runs_dir=/scratch/runs
    transfersep study --dry-run                        # print the commands only

Each stage is one ``python train.py -m +sweeps=<stage> ...`` multirun (``sweeps/<stage>.yaml``),
which returns when all its jobs have ended, so the stages run in order. A fine-tune starts only
from a *finished* pretraining run: where some pretraining runs did not finish, the fine-tuning
grid is launched for the finished ones only (one multirun per distinct set of augmentations) and
the others are reported as blocked. Baselines depend on nothing.

Overrides go to every stage, except grid keys, which narrow only the stages they belong to:
``pretrain=``/``augment=`` the pretraining and fine-tuning grids, ``finetune=`` fine-tuning,
``downstream=`` fine-tuning and baselines.

Relaunching is safe and is how failures are retried: finished runs are skipped, the others resume
from their last checkpoint. Exit status: 0 when every grid point finished, 1 otherwise.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from transfersep.run.records import finished
from transfersep.study.grid import GRID_KEYS, SWEEPS, grid_points, override_key, overrides_for
from transfersep.study.status import format_table, study_status


def study_dir_of(overrides: Sequence[str]) -> Path:
    """``<paths.runs_dir>/<study>`` as ``train.py`` with these overrides resolves it."""
    from transfersep.run.config import compose

    job_ov = [o for o in overrides if override_key(o) not in GRID_KEYS and not o.startswith("hydra")]
    cfg = compose(job_ov, hydra_node=True)
    return Path(str(cfg.paths.runs_dir)) / str(cfg.study)


def train_command() -> list[str]:
    """The training command a stage runs (the module behind ``python train.py``; works installed)."""
    return [sys.executable, "-m", "transfersep.run.entry"]


def finetune_launches(
    study_dir: Path, overrides: Sequence[str], stage: str = "finetune"
) -> tuple[list[list[str]], list[str]]:
    """Override lists of the fine-tuning (or zero-shot) multiruns whose pretraining finished, and
    the blocked grid points (subdirs)."""
    points = grid_points([stage], overrides)
    ready = {gp.parent_subdir for gp in points if finished(study_dir / gp.parent_subdir)}
    blocked = [gp.subdir for gp in points if gp.parent_subdir not in ready]
    todo = [gp for gp in points if gp.parent_subdir in ready]
    if not todo:
        return [], blocked
    if not blocked:
        return [list(overrides)], []
    base = [o for o in overrides if override_key(o) not in ("pretrain", "augment")]
    by_corpus: dict[str, list[str]] = {}
    for gp in todo:
        augs = by_corpus.setdefault(gp.pretrain, [])
        if gp.augment not in augs:
            augs.append(gp.augment)
    groups: dict[tuple[str, ...], list[str]] = {}  # corpora sharing one set of augmentations
    for corpus, augs in by_corpus.items():
        groups.setdefault(tuple(augs), []).append(corpus)
    return [[*base, f"pretrain={','.join(c)}", f"augment={','.join(a)}"] for a, c in groups.items()], blocked


def run_study(sweeps: Sequence[str], overrides: Sequence[str], dry_run: bool = False) -> int:
    study_dir = study_dir_of(overrides)
    print(f"[study] {study_dir}: stages {', '.join(sweeps)}", flush=True)
    for stage in sweeps:
        ov = overrides_for(stage, overrides)
        launches, blocked = [ov], []
        if stage in ("zeroshot", "finetune") and not dry_run:
            launches, blocked = finetune_launches(study_dir, ov, stage)
        for sub in blocked:
            print(f"[study] blocked: {sub} (its pretraining run has not finished)", flush=True)
        for launch in launches:
            cmd = [*train_command(), "-m", f"+sweeps={stage}", *launch]
            print(f"[study] {shlex.join(cmd)}", flush=True)
            if not dry_run:
                rc = subprocess.call(cmd)
                if rc:  # failed jobs are recorded in their status.json; the study goes on
                    print(f"[study] {stage}: multirun exited with {rc}; continuing", flush=True)
    if dry_run:
        return 0
    rows = study_status(study_dir, sweeps, overrides)
    print(format_table(rows, study_dir, {"running", "failed", "stale", "interrupted", "missing"}), flush=True)
    return 0 if all(r.state == "finished" for r in rows if r.in_grid) else 1


def configure_parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("overrides", nargs="*", help="Hydra overrides for every stage (grid keys narrow the grid)")
    p.add_argument(
        "--launcher",
        choices=["basic", "slurm"],
        default="basic",
        help="slurm: hydra/launcher=slurm (conf/hydra/launcher/slurm.yaml + conf/local/slurm.yaml)",
    )
    p.add_argument("--sweeps", default=",".join(SWEEPS), help="comma-separated stages to run, in order")
    p.add_argument("--dry-run", action="store_true", help="print the multirun commands, run nothing")
    return p


def run_from_args(args: argparse.Namespace) -> int:
    sweeps = [s for s in args.sweeps.split(",") if s]
    unknown = [s for s in sweeps if s not in SWEEPS]
    if unknown:
        print(f"error: unknown stage(s) {unknown}; choose from {', '.join(SWEEPS)}", file=sys.stderr)
        return 2
    overrides = list(args.overrides)
    if args.launcher == "slurm":
        overrides.append("hydra/launcher=slurm")
    return run_study(sweeps, overrides, args.dry_run)
