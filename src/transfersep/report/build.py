"""``transfersep report STUDY_DIR --out OUT [--alpha 0.001] [--full-grid] [--wandb]``

Turns the evaluated runs of one study (STUDY_DIR = ``<paths.runs_dir>/<study>``; a folder holding
several studies is refused with exit status 2) into the paper's outputs (all written atomically in OUT):

- ``fig1_pretraining.png``  — Figure 1: whole-models, augment=none, each corpus vs. no pretraining,
  and the zero-shot probe of each pretrained model when the study has one, with the
  mixture-as-estimate floor; error bars are the 95 % t-intervals of each mean over independent
  units, drawn only from ``stats.MIN_UNITS_INTERVAL`` units on;
- ``fig2_augmentation.png`` — Figure 2: SI-SDR gain of each augmentation over augment=none;
- ``fig3_curves.png``       — Figure 3: curve.csv of each run against *its own* training step
  (fine-tune curves start at 0 = the pretrained model before any downstream update, as in the
  paper's plot of downstream iterations; they are not offset by the pretraining steps); the
  zero-shot probe of a pretrained model is a marker at step 0;
- ``fig4_length.png``, ``table4_length.csv`` — Figure 4: transfer against pretraining length
  (``report.length``), only in a study with fine-tunes or probes beside the end of pretraining;
- ``table2_mask_minus_whole.{csv,md,png}`` — Table 2: mask-model minus whole-model SI-SDR;
- ``tests.csv`` — every comparison (``transfersep.report.comparisons``); ``summary.csv`` — one row per run;
- ``report.md`` — says what the study is made of (``provenance``), embeds the figures, states each
  comparison with the paper's and the independent columns side by side, lists problems (runs left
  out as stale among them) and, once, the missing grid points with the commands that produce them.

Every comparison is a one-sided Wilcoxon signed-rank test of "x better than y" on the per-excerpt
mean SI-SDR (``transfersep.report.stats``) beside its independent statistics (``blocks``). Bar
heights are ``result.json``'s overall mean (the mean of those per-excerpt values). A partial study
reports what it ran: the expected grid is what it launched (``results.study_grid``). A study without
any evaluated run (all failed, or none finished yet) writes nothing: the command says so, lists the
failed runs with their errors and exits with status 1.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
from pathlib import Path

import pandas as pd

from transfersep.files import atomic_write_text
from transfersep.report.comparisons import TEST_COLUMNS, run_tests
from transfersep.report.header import data_kinds, study_info
from transfersep.report.length import length_table
from transfersep.report.mdtables import table2_markdown
from transfersep.report.panels import draw_figures
from transfersep.report.results import (
    DATA_KINDS,
    axis,
    downstream_order,
    grid_pairs,
    missing_keys,
    pretrain_pairs,
    study_grid,
)
from transfersep.report.scan import scan_study
from transfersep.report.stats import ALPHA
from transfersep.report.tables import summary, table2, table2_png, write_csv
from transfersep.report.text import markdown_report
from transfersep.study.folders import SeveralStudies, resolve_study


class NothingToReport(ValueError):
    """The study holds no evaluated run: no figure or table would show anything. ``lines``: one
    per run that failed (subdir and its error)."""

    def __init__(self, message: str, lines: list[str]):
        super().__init__(message)
        self.lines = lines


def _nothing_evaluated(study_dir: Path) -> NothingToReport:
    """Why a study without an evaluated run has nothing to report: its failed runs, listed."""
    import json

    failed, other = [], 0
    for f in sorted(study_dir.glob("*/*/status.json")):
        try:
            st = json.loads(f.read_text())
        except (OSError, ValueError):
            st = {}
        sub = f.parent.relative_to(study_dir).as_posix()
        if isinstance(st, dict) and st.get("state") == "failed":
            error = str(st.get("error") or "no error recorded").strip().splitlines() or [""]
            failed.append(f"  failed {sub}: {error[-1]}")
        else:
            other += 1
    why = f"all {len(failed)} run(s) failed" if failed and not other else f"{len(failed)} run(s) failed"
    why = why if failed else "no fine-tune, baseline or zero-shot run has finished"
    return NothingToReport(
        f"{study_dir}: nothing to report, {why}"
        + (f" and {other} other run(s) are not evaluated" if failed and other else "")
        + "; no figure or table written (`transfersep status` shows every run and its log)",
        failed,
    )


def write_report(
    runs_dir: str | Path,
    out: str | Path,
    alpha: float = ALPHA,
    downstream: list[str] | None = None,
    full_grid: bool = False,
) -> dict:
    """Write every output of the report; returns {name: path} plus 'missing' and 'problems'.

    ``runs_dir`` is a study folder (or a folder holding exactly one); several studies raise
    ``SeveralStudies``, a study without any evaluated run ``NothingToReport`` (nothing written).
    The expected grid is what the study launched (``results.study_grid``), or the whole grid of
    ``sweeps/grid.yaml`` with ``full_grid`` (its downstream sets too, unless ``downstream`` names them).
    """
    runs_dir, out = Path(runs_dir), Path(out)
    study_dir = resolve_study(runs_dir) if runs_dir.is_dir() else runs_dir
    scanned = scan_study(study_dir)
    runs, problems = scanned.runs, scanned.problems
    if not runs:  # figures and tables of nothing would look like results
        raise _nothing_evaluated(study_dir)
    info = study_info(study_dir, runs)
    DATA_KINDS.clear()  # every label below says what its corpus was made of
    DATA_KINDS.update(data_kinds(info))
    found = {k.downstream for k in runs}
    downs = downstream_order(downstream or (found | set(axis("downstream")) if full_grid else found))
    expected = study_grid(study_dir, runs, downs, full_grid)
    pairs = pretrain_pairs(study_dir, runs) if not full_grid else grid_pairs()
    rows = run_tests(runs, downs, pairs, expected, alpha)
    length = length_table(scanned, downs, alpha)  # Figure 4: None when the study has no such axis
    paths: dict = draw_figures(out, runs, downs, pairs, rows, alpha, length)
    tests = pd.DataFrame(rows, columns=TEST_COLUMNS)
    for c in ("n", "n_units", "n_dropped"):
        tests[c] = tests[c].astype("Int64")
    t2 = table2(rows, downs, pairs)
    for c in ("n", "n_units"):
        t2[c] = t2[c].astype("Int64")
    paths["tests"] = write_csv(tests, out / "tests.csv")
    paths["table2_csv"] = write_csv(t2, out / "table2_mask_minus_whole.csv")
    t2_md = table2_markdown(t2, downs, alpha)
    paths["table2_md"] = atomic_write_text(out / "table2_mask_minus_whole.md", t2_md)
    paths["table2_png"] = table2_png(out / "table2_mask_minus_whole.png", t2, downs, alpha)
    if length is not None:
        paths["table4_csv"] = write_csv(length, out / "table4_length.csv")
    summ = summary(runs)
    paths["summary"] = write_csv(summ, out / "summary.csv")
    missing = missing_keys(runs, expected)
    for run in runs.values():
        problems += [f"{run.rel}: {n}" for n in run.notes]
    blind = [r.rel for r in runs.values() if r.excerpts is not None and r.origins is None]
    if blind:
        problems.append(
            f"{len(blind)} run(s) have a scores.csv without the track/start_s/seconds of their "
            f"excerpts (their test set does not say where its excerpts come from; e.g. {blind[0]}): "
            "their comparisons show only the paper's test"
        )
    md = markdown_report(
        study_dir=study_dir,
        info=info,
        alpha=alpha,
        downs=downs,
        runs=runs,
        tests=tests,
        table2_md=t2_md,
        expected=expected,
        missing=missing,
        problems=problems,
        full_grid=full_grid,
        created=_dt.datetime.now().isoformat(timespec="seconds"),
        length=length,
    )
    paths["report"] = atomic_write_text(out / "report.md", md)
    paths["missing"], paths["problems"] = missing, problems
    return paths


def log_wandb(paths: dict, out: Path, project: str, entity: str | None, alpha: float) -> str:
    """Log the figures and tables to a W&B run (offline when no login is configured); returns mode."""
    import wandb

    from transfersep.run.loggers import wandb_mode

    mode = wandb_mode()
    run = wandb.init(
        project=project, entity=entity, job_type="report", mode=mode, dir=str(out), config={"alpha": alpha}
    )
    try:
        run.log({k: wandb.Image(str(paths[k])) for k in ("fig1", "fig2", "fig3", "table2_png")})
        for k in ("tests", "table2_csv", "summary"):
            df = pd.read_csv(paths[k])
            run.log({k: wandb.Table(dataframe=df.astype(object).where(df.notna(), None))})
    finally:
        run.finish()
    return mode


def main(argv: list[str] | None = None, parser: argparse.ArgumentParser | None = None) -> int:
    """The command line; ``parser``: the one ``transfersep report`` names (default: a plain one)."""
    p = parser or argparse.ArgumentParser(prog="transfersep report")
    p.description = "Figures 1-3, Table 2 and tests of a study's runs."
    p.add_argument("runs_dir", type=Path, help="a study folder (<paths.runs_dir>/<study>), scanned for result.json")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--alpha", type=float, default=ALPHA, help="significance threshold (default 0.001)")
    p.add_argument(
        "--downstream", nargs="+", default=None, help="downstream sets the study should have (default: those found)"
    )
    p.add_argument(
        "--full-grid",
        action="store_true",
        help="expect the whole grid of sweeps/grid.yaml (default: what the study launched)",
    )
    p.add_argument("--wandb", action="store_true", help="also log the figures and tables to W&B")
    p.add_argument("--wandb-project", default="transfersep")
    p.add_argument("--wandb-entity", default=None)
    a = p.parse_args(argv)
    if not a.runs_dir.is_dir():
        p.error(f"runs directory {a.runs_dir} does not exist")
    if not 0 < a.alpha < 1:
        p.error(f"--alpha must be in (0, 1), got {a.alpha}")
    try:
        paths = write_report(a.runs_dir, a.out, a.alpha, a.downstream, a.full_grid)
    except SeveralStudies as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except NothingToReport as err:
        print("\n".join([f"error: {err}", *err.lines]), file=sys.stderr)
        return 1
    print(f"report: {paths['report']}")
    n_miss, n_prob = len(paths["missing"]), len(paths["problems"])
    print(f"{n_miss} grid point(s) missing, {n_prob} problem(s); see report.md")
    if a.wandb:
        mode = log_wandb(paths, a.out, a.wandb_project, a.wandb_entity, a.alpha)
        print(f"logged to W&B ({mode})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
