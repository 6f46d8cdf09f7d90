"""The whole study in order: the stages of ``sweeps/grid.yaml`` (the paper's: pretraining grid ->
zero-shot probes -> fine-tuning grid -> baselines).

    transfersep study                                  # locally, one run after another
    transfersep study --launcher slurm                 # every stage as SLURM job arrays
    transfersep study --launcher slurm downstream=bach10 study=mine paths.runs_dir=/scratch/runs
    transfersep study --dry-run                        # print the commands only

Each stage is one ``python train.py -m +sweeps=<stage> ...`` multirun (``sweeps/<stage>.yaml``),
which returns when all its jobs have ended, so the stages run in order. A stage that waits for
another (fine-tunes and zero-shot probes wait for pretraining) starts only from *finished* runs of
it: where some did not finish, the stage is launched for the finished ones only (as few
multiruns as cover them) and the others are reported as blocked.

Overrides go to every stage, except grid keys, which narrow only the stages that sweep them
(``sweeps/grid.yaml``; ``downstream=bach10`` narrows the probes, fine-tunes and baselines and
leaves pretraining alone).

Relaunching is safe and is how failures are retried: finished runs are skipped, the others resume
from their last checkpoint. Exit status: 0 when every grid point finished, 1 otherwise (2 on bad
arguments or a malformed grid file).
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from transfersep.run.point import SWEPT_KEYS
from transfersep.run.records import finished
from transfersep.study.grid import grid_points, load_grid, override_key, overrides_for, stage_names
from transfersep.study.status import format_table, study_status


def study_dir_of(overrides: Sequence[str]) -> Path:
    """``<paths.runs_dir>/<study>`` as ``train.py`` with these overrides resolves it."""
    from transfersep.run.config import compose

    job_ov = [o for o in overrides if override_key(o) not in SWEPT_KEYS and not o.startswith("hydra")]
    cfg = compose(job_ov, hydra_node=True)
    return Path(str(cfg.paths.runs_dir)) / str(cfg.study)


def train_argv() -> list[str]:
    """The training command a stage runs (the module behind ``python train.py``; works installed)."""
    return [sys.executable, "-m", "transfersep.cli.train"]


def finetune_launches(
    study_dir: Path, overrides: Sequence[str], stage: str = "finetune"
) -> tuple[list[list[str]], list[str]]:
    """Override lists of the multiruns of ``stage`` whose parent runs (of the stage it waits for)
    finished, and the blocked grid points (subdirs)."""
    grid = load_grid()
    waits = grid.stage(stage).waits_for
    if waits is None:
        return [list(overrides)], []
    points = grid_points([stage], overrides)
    ready = {gp.parent_subdir for gp in points if finished(study_dir / gp.parent_subdir)}
    blocked = [gp.subdir for gp in points if gp.parent_subdir not in ready]
    todo = [gp for gp in points if gp.parent_subdir in ready]
    if not todo:
        return [], blocked
    if not blocked:
        return [list(overrides)], []
    keys = grid.stages[waits].sweeps  # what names a parent run: pretrain, augment
    base = [o for o in overrides if override_key(o) not in keys]
    parents = list(dict.fromkeys(tuple(str(getattr(gp, k)) for k in keys) for gp in todo))
    launches = [[*base, *(f"{k}={','.join(vs)}" for k, vs in zip(keys, group))] for group in _products(parents)]
    return launches, blocked


def _products(tuples: list[tuple[str, ...]]) -> list[list[list[str]]]:
    """Cover exactly ``tuples`` by few products (one multirun each): values of the first key that
    share the same set of remaining tuples go together, and that set is split the same way."""
    if not tuples or not tuples[0]:
        return [[]]
    rest_of: dict[str, list[tuple[str, ...]]] = {}
    for t in tuples:
        rest_of.setdefault(t[0], []).append(t[1:])
    groups: dict[tuple, list[str]] = {}  # e.g. corpora sharing one set of augmentations
    for first, rest in rest_of.items():
        groups.setdefault(tuple(rest), []).append(first)
    return [[firsts, *sub] for rest, firsts in groups.items() for sub in _products(list(rest))]


def run_study(sweeps: Sequence[str], overrides: Sequence[str], dry_run: bool = False) -> int:
    study_dir = study_dir_of(overrides)
    print(f"[study] {study_dir}: stages {', '.join(sweeps)}", flush=True)
    for stage in sweeps:
        ov = overrides_for(stage, overrides)
        launches, blocked = [ov], []
        if load_grid().stage(stage).waits_for and not dry_run:
            launches, blocked = finetune_launches(study_dir, ov, stage)
        for sub in blocked:
            print(f"[study] blocked: {sub} (its pretraining run has not finished)", flush=True)
        for launch in launches:
            cmd = [*train_argv(), "-m", f"+sweeps={stage}", *launch]
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


def main(argv: list[str], parser: argparse.ArgumentParser) -> int:
    """The verb: this module's description, its options and Hydra-style overrides in any order."""
    parser.description = __doc__
    return run_from_args(configure_parser(parser).parse_intermixed_args(argv))


def configure_parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("overrides", nargs="*", help="Hydra overrides for every stage (grid keys narrow the grid)")
    p.add_argument(
        "--launcher",
        choices=["basic", "slurm"],
        default="basic",
        help="slurm: hydra/launcher=slurm (conf/hydra/launcher/slurm.yaml + conf/local/slurm.yaml)",
    )
    p.add_argument(
        "--sweeps", default=None, help="comma-separated stages to run, in order (default: those of sweeps/grid.yaml)"
    )
    p.add_argument("--dry-run", action="store_true", help="print the multirun commands, run nothing")
    return p


def run_from_args(args: argparse.Namespace) -> int:
    stages = stage_names()  # a malformed grid file raises GridError: one line from the command
    sweeps = [s for s in (args.sweeps or ",".join(stages)).split(",") if s]
    unknown = [s for s in sweeps if s not in stages]
    if unknown:
        print(f"error: unknown stage(s) {unknown}; choose from {', '.join(stages)}", file=sys.stderr)
        return 2
    overrides = list(args.overrides)
    if args.launcher == "slurm":
        overrides.append("hydra/launcher=slurm")
    return run_study(sweeps, overrides, args.dry_run)
