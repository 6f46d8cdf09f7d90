"""The one scan of a study: every evaluated run read once, for every figure and table.

Runs of the paper's grid (fine-tuned or probed from the end of pretraining, ``results.at_end``)
feed Figures 1-3, Table 2 and the tests, keyed by their grid point (``run.point.GridPoint``, at
replicate 0). Every run also feeds Figure 4 (``report.length``) under its *length key*: its grid
point, which names its ``pretrain_steps`` value, or for each score of a baseline at one of its own
iterations (its kept steps, ``baseline/<set>/kept/step-<n>/``, and its end) the baseline's grid
point with ``kept_step``: the iteration scored.

A run built on a parent that is no longer what it loaded (``run.provenance.stale_reason``) is
left out of every figure, listed as a problem once, and kept by its length key in ``Scan.stale``
so that Figure 4 shows its row as absent instead of dropping it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from transfersep.files import RESULT
from transfersep.report.results import Key, Run, at_end, key_name, load_run
from transfersep.run.provenance import stale_reason
from transfersep.study.folders import resolve_study, run_results


@dataclass
class Scan:
    runs: dict[Key, Run]  # the paper's grid (the end of pretraining), by grid point
    length: dict[Key, Run]  # every run by its length key (Figure 4)
    stale: dict[Key, Run]  # length key -> a stale run left out (Figure 4 draws its row as absent)
    problems: list[str]


def length_key(run: Run) -> Key | None:
    """The run's key on Figure 4's axis, or None for a baseline score that records no step."""
    gp, extra = run.result["grid_point"], run.result.get("extra") or {}
    if run.key.stage == "baseline":
        step = gp.get("kept_step", extra.get("evaluated_step", extra.get("steps")))
        return None if step is None else replace(run.key, kept_step=int(step))
    return run.key


def scan_study(root: str | Path) -> Scan:
    """Every evaluated run below the study folder ``root`` and the problems met (never raises per
    run). This is the one place runs are loaded: a run that must not be reported is left out here.
    ``root`` holding several studies raises ``studies.SeveralStudies``.

    When a grid point of the paper's grid is found twice (two copies of a run), the newest
    result.json wins; on Figure 4's axis the first found (a run's own folder before a baseline's
    kept scores) does.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"runs directory {root} does not exist")
    root = resolve_study(root)
    found: dict[tuple, Run] = {}  # (key, replicate) -> run
    length: dict[tuple, Run] = {}
    stale: dict[Key, Run] = {}
    problems: list[str] = []
    for path in dict.fromkeys(run_results(root) + sorted(root.glob(f"baseline/*/kept/step-*/{RESULT}"))):
        try:
            run = load_run(path, root)
        except ValueError as err:
            if "is not evaluated" not in str(err):
                problems.append(f"skipped {path}: {err}")
            continue
        except (OSError, json.JSONDecodeError, KeyError, pd.errors.ParserError) as err:
            problems.append(f"skipped {path}: {type(err).__name__}: {err}")
            continue
        lk = length_key(run)
        why = stale_reason(run.dir, (run.result.get("extra") or {}).get("parent"))
        if why:
            problems.append(f"left out {run.rel}: stale, {why}; relaunch the study to train it again")
            if lk is not None:
                stale.setdefault(lk, replace(run, key=lk, replicates={}))
            continue
        if lk is None:
            problems.append(f"{run.rel}: its result.json records no step; left out of Figure 4")
        else:  # a copy: the length key and its replicates must not touch the paper grid's run
            length.setdefault((lk, run.replicate), replace(run, key=lk, replicates={}))
        if not at_end(run.result["grid_point"]):
            continue
        old = found.get((run.key, run.replicate))
        if old is not None:
            keep, drop = sorted([old, run], key=lambda r: (r.dir / RESULT).stat().st_mtime)[::-1]
            problems.append(f"{key_name(run.key)} found twice: using {keep.rel}, ignoring {drop.rel}")
            run = keep
        found[(run.key, run.replicate)] = run
    return Scan(group_replicates(found.values()), group_replicates(length.values()), stale, problems)


def scan(root: str | Path) -> tuple[dict[Key, Run], list[str]]:
    """The paper's grid of the study in ``root`` and every problem met (``scan_study``)."""
    s = scan_study(root)
    return s.runs, s.problems


def group_replicates(runs) -> dict[Key, Run]:
    """One ``Run`` per key: its replicate 0 (or the lowest present), holding every replicate."""
    by_key: dict[Key, dict] = {}
    for run in runs:
        by_key.setdefault(run.key, {})[run.replicate] = run
    out = {}
    for key, reps in by_key.items():
        first = reps[min(reps)]
        first.replicates = dict(sorted(reps.items()))
        out[key] = first
    return out
