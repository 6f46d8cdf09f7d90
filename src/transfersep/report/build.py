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
- ``table2_mask_minus_whole.{csv,md,png}`` — Table 2: mask-model minus whole-model SI-SDR;
- ``tests.csv`` — every comparison (``transfersep.report.comparisons``); ``summary.csv`` — one row per run;
- ``report.md`` — says what the study is made of (``provenance``), embeds the figures, states each
  comparison with the paper's and the independent columns side by side, lists problems and,
  once, the missing grid points with the commands that produce them.

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
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from transfersep.files import atomic_write_text
from transfersep.report import figures
from transfersep.report.comparisons import TEST_COLUMNS, find, run_tests
from transfersep.report.header import data_kinds, study_info
from transfersep.report.replicates import has_replicates, recipe_interval, replicate_summary
from transfersep.report.results import (
    DATA_KINDS,
    Key,
    Run,
    axis,
    describe_key,
    downstream_order,
    grid_pairs,
    key_name,
    label,
    missing_keys,
    pretrain_pairs,
    scan,
    study_grid,
    zeroshot_label,
)
from transfersep.report.stats import ALPHA, MIN_UNITS_INTERVAL
from transfersep.report.stats import mean_interval as _unit_interval
from transfersep.report.text import markdown_report, table2_markdown
from transfersep.study.folders import SeveralStudies, resolve_study


def mean_interval(run: Run | None) -> tuple[float, float, float] | None:
    """(mean over units, low, high): the 95 % t-interval of a run's mean SI-SDR over its
    independent test units, or None (no scores, no origins, or too few units)."""
    if run is None or run.excerpts is None:
        return None
    return _unit_interval(run.excerpts, run.origins)


def floor_of(run: Run | None) -> float | None:
    """The SI-SDR of the mixture as every source's estimate, as a zero-shot probe records it."""
    v = ((run.result.get("extra") or {}).get("mixture_as_estimate_sisdr")) if run else None
    return float(v) if isinstance(v, (int, float)) and not math.isnan(v) else None


def _sig(row: dict | None, recipe: bool = False) -> bool | str:
    """True, False, or "paper" (significant only under the paper's test) for a bar's star; with
    ``recipe`` (a study with replicates) the star is the recipe test's."""
    if recipe:
        return bool(row and row.get("significant_recipe"))
    if not row or not row["significant"]:
        return False
    return "paper" if row["paper_only"] else True


def draw_figures(
    out: Path, runs: dict[Key, Run], downs: list[str], pairs: list[tuple[str, str]], rows: list[dict], alpha: float
) -> dict:
    paths = {}
    corpora = [c for c in dict.fromkeys(c for c, _ in pairs) if (c, "none") in pairs]
    zs = [c for c in corpora if any(k[0] == "zeroshot" and k[1] == c for k in runs)]
    conds = ["none", *corpora, *(f"zs:{c}" for c in zs)]
    zs_label = zeroshot_label()
    labels = {c: label("pretrain", c) for c in ("none", *corpora)}
    labels.update({f"zs:{c}": f"{label('pretrain', c)}, {zs_label}" for c in zs})
    vals, sig, errs, floors = {}, {}, {}, {}
    rep = has_replicates(runs)  # bars over replicates (the recipe), else the one trained model

    def bar(r: Run | None) -> tuple:
        if r is None:
            return None, None
        return (replicate_summary(r)["mean"], recipe_interval(r)) if rep else (r.mean, mean_interval(r))

    for d in downs:
        floor = next((f for c in zs if (f := floor_of(runs.get(("zeroshot", c, "none", d)))) is not None), None)
        if floor is not None:
            floors[d] = floor
        vals[(d, "none")], errs[(d, "none")] = bar(runs.get(("baseline", d)))
        for c in corpora:
            row = find(rows, "H1", d, key_name(("finetune", c, "none", "whole", d)))
            vals[(d, c)], errs[(d, c)] = bar(runs.get(("finetune", c, "none", "whole", d)))
            sig[(d, c)] = _sig(row, rep)
        for c in zs:
            vals[(d, f"zs:{c}")], errs[(d, f"zs:{c}")] = bar(runs.get(("zeroshot", c, "none", d)))
    paths["fig1"] = figures.figure1(
        out / "fig1_pretraining.png",
        downs,
        conds,
        labels,
        vals,
        sig,
        alpha,
        errs,
        floors,
        MIN_UNITS_INTERVAL,
        replicates=max((len(r.replicates) for r in runs.values()), default=1) if rep else 0,
    )

    aug_corpora = [c for c in corpora if any(cc == c and a != "none" for cc, a in pairs)]
    grid_augs = [a for a in axis("augment") if a != "none"]
    augs = [a for a in grid_augs if any((c, a) in pairs for c in aug_corpora)]
    diffs, sig2 = {}, {}
    for d in downs:
        for c in aug_corpora:
            for a in augs:
                r = find(rows, "H2", d, key_name(("finetune", c, a, "whole", d)))
                diffs[(d, c, a)], sig2[(d, c, a)] = (r["diff_db"], _sig(r)) if r else (None, False)
    paths["fig2"] = figures.figure2(
        out / "fig2_augmentation.png",
        downs,
        aug_corpora,
        augs,
        {
            **{d: label("downstream", d) for d in downs},
            **{c: label("pretrain", c) for c in aug_corpora},
            **{a: label("augment", a) for a in augs},
        },
        diffs,
        sig2,
        alpha,
    )

    curves: dict[str, list] = {}
    markers: dict[str, list] = {}
    colors = figures.colors()
    for d in downs:
        lines = []
        b = runs.get(("baseline", d))
        if b is not None and b.curve is not None:
            lines.append(("from scratch", b.curve["step"], b.curve["sisdr_db"], {"color": "black", "linewidth": 2.0}))
        for f, ls in (("whole", "-"), ("mask", "--")):  # the two modes Figure 3 draws
            for c in corpora:
                r = runs.get(("finetune", c, "none", f, d))
                if r is not None and r.curve is not None:
                    lines.append(
                        (
                            f"{label('pretrain', c)} → {label('finetune', f)}",
                            r.curve["step"],
                            r.curve["sisdr_db"],
                            {"color": colors.get(c, "C0"), "linestyle": ls, "linewidth": 1.4},
                        )
                    )
        curves[d] = lines
        markers[d] = [
            (
                f"{label('pretrain', c)}, {zs_label}",
                0,
                runs[("zeroshot", c, "none", d)].mean,
                {"color": colors.get(c, "C0"), "marker": "D", "markersize": 6, "markeredgecolor": "black"},
            )
            for c in zs
            if runs.get(("zeroshot", c, "none", d)) and runs[("zeroshot", c, "none", d)].mean is not None
        ]
    paths["fig3"] = figures.figure3(
        out / "fig3_curves.png",
        [label("downstream", d) for d in downs],
        {label("downstream", d): v for d, v in curves.items()},
        {label("downstream", d): v for d, v in markers.items()},
    )
    return paths


def table2(rows: list[dict], downs: list[str], pairs: list[tuple[str, str]]) -> pd.DataFrame:
    """Long form: one row per (augment, corpus) pair of the study x downstream, mask minus whole."""
    out = []
    corpora, augments = axis("pretrain"), axis("augment")
    for c, a in sorted(
        pairs,
        key=lambda ca: (
            augments.index(ca[1]) if ca[1] in augments else len(augments),
            corpora.index(ca[0]) if ca[0] in corpora else len(corpora),
            ca,
        ),
    ):
        for d in downs:
            r = find(rows, "R2", d, key_name(("finetune", c, a, "mask", d))) or {}
            out.append(
                {
                    "augment": a,
                    "pretrain": c,
                    "downstream": d,
                    "mask_sisdr_db": r.get("x_sisdr_db"),
                    "whole_sisdr_db": r.get("y_sisdr_db"),
                    "mask_minus_whole_db": r.get("diff_db"),
                    "statistic": r.get("statistic"),
                    "p": r.get("p"),
                    "n": r.get("n"),
                    "significant_increase": bool(r.get("significant")),
                    "median_ci_low": r.get("median_ci_low"),
                    "median_ci_high": r.get("median_ci_high"),
                    "n_units": r.get("n_units"),
                    "p_units": r.get("p_units"),
                    "significant_independent": bool(r.get("significant_independent")),
                    "paper_only": bool(r.get("paper_only")),
                    "note": r.get("note", "absent"),
                }
            )
    return pd.DataFrame(
        out,
        columns=[
            "augment",
            "pretrain",
            "downstream",
            "mask_sisdr_db",
            "whole_sisdr_db",
            "mask_minus_whole_db",
            "statistic",
            "p",
            "n",
            "significant_increase",
            "median_ci_low",
            "median_ci_high",
            "n_units",
            "p_units",
            "significant_independent",
            "paper_only",
            "note",
        ],
    )


def summary(runs: dict[Key, Run]) -> pd.DataFrame:
    rows = []
    every = [(key, rep) for key, run in runs.items() for rep in (run.replicates or {run.replicate: run}).values()]
    for key, run in sorted(every, key=lambda kv: kv[1].rel):
        gp, res = run.result["grid_point"], run.result
        overall = res.get("overall") or {}
        fold, seed = run.replicate
        row = {
            "run": run.rel,
            "model": describe_key(key),
            "stage": key[0],
            "pretrain": gp.get("pretrain"),
            "augment": gp.get("augment"),
            "finetune": gp.get("finetune"),
            "downstream": gp.get("downstream"),
            "fold": fold,
            "seed": seed,
            "n_excerpts": res.get("n_excerpts"),
            "n_excluded": res.get("n_excluded"),
            "sisdr_mean": overall.get("mean"),
            "sisdr_median": overall.get("median"),
            "sisdr_std": overall.get("std"),
            "sisdr_n": overall.get("n"),
            "curve_points": None if run.curve is None else len(run.curve),
        }
        for s, st in (res.get("per_source") or {}).items():
            row[f"sisdr_{s}"] = (st or {}).get("mean")
        for k, v in (res.get("extra") or {}).items():
            if isinstance(v, (str, int, float, bool)) or v is None:
                row[f"extra_{k}"] = v
        rows.append(row)
    return pd.DataFrame(rows)


def _csv(df: pd.DataFrame, path: Path) -> Path:
    return atomic_write_text(path, df.to_csv(index=False, lineterminator="\n"))


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
    runs, problems = scan(study_dir)
    if not runs:  # figures and tables of nothing would look like results
        raise _nothing_evaluated(study_dir)
    info = study_info(study_dir, runs)
    DATA_KINDS.clear()  # every label below says what its corpus was made of
    DATA_KINDS.update(data_kinds(info))
    found = {k[-1] for k in runs}
    downs = downstream_order(downstream or (found | set(axis("downstream")) if full_grid else found))
    expected = study_grid(study_dir, runs, downs, full_grid)
    pairs = pretrain_pairs(study_dir, runs) if not full_grid else grid_pairs()
    rows = run_tests(runs, downs, pairs, expected, alpha)
    paths: dict = draw_figures(out, runs, downs, pairs, rows, alpha)
    tests = pd.DataFrame(rows, columns=TEST_COLUMNS)
    for c in ("n", "n_units", "n_dropped"):
        tests[c] = tests[c].astype("Int64")
    t2 = table2(rows, downs, pairs)
    for c in ("n", "n_units"):
        t2[c] = t2[c].astype("Int64")
    paths["tests"] = _csv(tests, out / "tests.csv")
    paths["table2_csv"] = _csv(t2, out / "table2_mask_minus_whole.csv")
    t2_md = table2_markdown(t2, downs, alpha)
    paths["table2_md"] = atomic_write_text(out / "table2_mask_minus_whole.md", t2_md)
    paths["table2_png"] = _table2_png(out / "table2_mask_minus_whole.png", t2, downs, alpha)
    summ = summary(runs)
    paths["summary"] = _csv(summ, out / "summary.csv")
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
    )
    from transfersep.report.length import write_length

    length_paths, length_md, length_problems = write_length(study_dir, out, downs, alpha)  # Figure 4
    paths.update(length_paths)
    problems += length_problems
    if length_md:
        md = md.rstrip("\n") + "\n\n" + length_md
    paths["report"] = atomic_write_text(out / "report.md", md)
    paths["missing"], paths["problems"] = missing, problems
    return paths


def _table2_png(path: Path, t2: pd.DataFrame, downs: list[str], alpha: float) -> Path:
    rows = list(dict.fromkeys(zip(t2.augment, t2.pretrain)))
    if not rows or not downs:
        return figures._note_figure(
            path, "Table 2: mask-model minus whole-model", "absent: this study has no pair of mask- and whole-models"
        )
    cells = np.full((len(rows), len(downs)), "absent", dtype=object)
    bold = np.zeros((len(rows), len(downs)), dtype=bool)
    for i, (a, c) in enumerate(rows):
        for j, d in enumerate(downs):
            r = t2[(t2.augment == a) & (t2.pretrain == c) & (t2.downstream == d)].iloc[0]
            v = r["mask_minus_whole_db"]
            if v is not None and not (isinstance(v, float) and math.isnan(v)):
                cells[i, j] = f"{v:+.2f}" + (" †" if r["paper_only"] else "")
                bold[i, j] = bool(r["significant_increase"])
    return figures.table_image(
        path,
        "Table 2: SI-SDR of mask-model minus whole-model (dB)",
        [f"{label('augment', a)} / {label('pretrain', c)}" for a, c in rows],
        [label("downstream", d) for d in downs],
        cells,
        bold,
        f"bold, shaded = significant increase (one-sided Wilcoxon, p < {alpha:g}); † = only under the paper's "
        "test, not over independent units; absent = no evaluated run",
    )


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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="transfersep report", description="Figures 1-3, Table 2 and tests of a study's runs."
    )
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
