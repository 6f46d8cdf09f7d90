"""``python -m transfersep.eval.report RUNS_DIR --out OUT [--alpha 0.001] [--wandb]``

Turns the evaluated runs below RUNS_DIR into the paper's outputs (all written atomically in OUT):

- ``fig1_pretraining.png``  — Figure 1: whole-models, augment=none, each corpus vs. no pretraining;
- ``fig2_augmentation.png`` — Figure 2: SI-SDR gain of each augmentation over augment=none;
- ``fig3_curves.png``       — Figure 3: curve.csv of each run against *its own* training step
  (fine-tune curves start at 0 = the pretrained model before any downstream update, as in the
  paper's plot of downstream iterations; they are not offset by the pretraining steps);
- ``table2_mask_minus_whole.{csv,md,png}`` — Table 2: mask-model minus whole-model SI-SDR;
- ``tests.csv`` — every Wilcoxon test; ``summary.csv`` — one row per run;
- ``report.md`` — embeds the figures, states each test, lists problems and missing grid points.

Every comparison is a one-sided Wilcoxon signed-rank test of "x better than y" on the per-excerpt
mean SI-SDR (``transfersep.eval.stats``): H1 pretrained vs. baseline, H2 augmented vs. not,
R2 mask vs. whole. Bar heights are ``result.json``'s overall mean (the mean of those per-excerpt
values). A partial study reports what exists and lists what is missing.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from transfersep.eval import figures
from transfersep.eval.report_text import markdown_report, table2_markdown
from transfersep.eval.results import (AUG_LABELS, AUGMENTS, CORPORA, LABELS, Key, Run, downstream_order,
                                      key_name, missing_keys, scan)
from transfersep.eval.stats import ALPHA, TestSetMismatch, check_same_test_set, wilcoxon_paired
from transfersep.fsutil import atomic_write_text

TEST_COLUMNS = ["family", "downstream", "x", "y", "x_sisdr_db", "y_sisdr_db", "diff_db", "statistic",
                "p", "n", "median_diff_db", "direction", "significant", "note"]


def compare(family: str, d: str, xk: Key, yk: Key, runs: dict[Key, Run], alpha: float) -> dict:
    """One test row: is run ``xk`` better than run ``yk``? Missing runs/scores give a note, not an error."""
    x, y = runs.get(xk), runs.get(yk)
    row = {c: None for c in TEST_COLUMNS}
    row.update(family=family, downstream=d, x=key_name(xk), y=key_name(yk), significant=False,
               x_sisdr_db=x.mean if x else None, y_sisdr_db=y.mean if y else None)
    if x and y and x.mean is not None and y.mean is not None:
        row["diff_db"] = x.mean - y.mean
    if x is None or y is None:
        row["note"] = "missing run: " + ", ".join(key_name(k) for k, r in ((xk, x), (yk, y)) if r is None)
    elif x.excerpts is None or y.excerpts is None:
        row["note"] = "no scores.csv for " + ", ".join(r.rel for r in (x, y) if r.excerpts is None)
    else:
        try:
            check_same_test_set(x.result.get("test_set_sha1"), y.result.get("test_set_sha1"))
            t = wilcoxon_paired(x.excerpts, y.excerpts, "greater", alpha)
        except TestSetMismatch as err:
            row["note"] = f"not comparable: {err}"
        else:
            row.update(statistic=t.statistic, p=t.p, n=t.n, median_diff_db=t.median_diff,
                       direction=t.direction, significant=t.significant)
    return row


def run_tests(runs: dict[Key, Run], downs: list[str], alpha: float) -> list[dict]:
    rows = []
    for d in downs:
        for c in CORPORA:
            rows.append(compare("H1 pretrained > scratch", d, ("finetune", c, "none", "whole", d),
                                ("baseline", d), runs, alpha))
        for c in CORPORA:
            for a in AUGMENTS[1:]:
                rows.append(compare("H2 augmented > no augmentation", d, ("finetune", c, a, "whole", d),
                                    ("finetune", c, "none", "whole", d), runs, alpha))
        for a in AUGMENTS:
            for c in CORPORA:
                rows.append(compare("R2 mask > whole", d, ("finetune", c, a, "mask", d),
                                    ("finetune", c, a, "whole", d), runs, alpha))
    return rows


def _row(rows: list[dict], family: str, d: str, x: str) -> dict:
    return next(r for r in rows if r["family"].startswith(family) and r["downstream"] == d and r["x"] == x)


def draw_figures(out: Path, runs: dict[Key, Run], downs: list[str], rows: list[dict], alpha: float) -> dict:
    paths = {}
    conds = ["none", *CORPORA]
    vals, sig = {}, {}
    for d in downs:
        b = runs.get(("baseline", d))
        vals[(d, "none")] = b.mean if b else None
        for c in CORPORA:
            r = _row(rows, "H1", d, key_name(("finetune", c, "none", "whole", d)))
            vals[(d, c)], sig[(d, c)] = r["x_sisdr_db"], r["significant"]
    paths["fig1"] = figures.figure1(out / "fig1_pretraining.png", downs, conds, LABELS, vals, sig, alpha)

    diffs, sig2 = {}, {}
    for d in downs:
        for c in CORPORA:
            for a in AUGMENTS[1:]:
                r = _row(rows, "H2", d, key_name(("finetune", c, a, "whole", d)))
                diffs[(d, c, a)], sig2[(d, c, a)] = r["diff_db"], r["significant"]
    paths["fig2"] = figures.figure2(out / "fig2_augmentation.png", downs, CORPORA, AUGMENTS[1:],
                                    {**LABELS, **AUG_LABELS}, diffs, sig2, alpha)

    curves: dict[str, list] = {}
    for d in downs:
        lines = []
        b = runs.get(("baseline", d))
        if b is not None and b.curve is not None:
            lines.append(("from scratch", b.curve["step"], b.curve["sisdr_db"],
                          {"color": "black", "linewidth": 2.0}))
        for f, ls in (("whole", "-"), ("mask", "--")):
            for c in CORPORA:
                r = runs.get(("finetune", c, "none", f, d))
                if r is not None and r.curve is not None:
                    lines.append((f"{LABELS[c]} → {f}", r.curve["step"], r.curve["sisdr_db"],
                                  {"color": figures.COLORS[c], "linestyle": ls, "linewidth": 1.4}))
        curves[d] = lines
    paths["fig3"] = figures.figure3(out / "fig3_curves.png", [LABELS.get(d, d) for d in downs],
                                    {LABELS.get(d, d): v for d, v in curves.items()})
    return paths


def table2(rows: list[dict], downs: list[str]) -> pd.DataFrame:
    """Long form: one row per augment x corpus x downstream, mask minus whole."""
    out = []
    for a in AUGMENTS:
        for c in CORPORA:
            for d in downs:
                r = _row(rows, "R2", d, key_name(("finetune", c, a, "mask", d)))
                out.append({"augment": a, "pretrain": c, "downstream": d, "mask_sisdr_db": r["x_sisdr_db"],
                            "whole_sisdr_db": r["y_sisdr_db"], "mask_minus_whole_db": r["diff_db"],
                            "statistic": r["statistic"], "p": r["p"], "n": r["n"],
                            "significant_increase": r["significant"], "note": r["note"]})
    return pd.DataFrame(out)


def summary(runs: dict[Key, Run]) -> pd.DataFrame:
    rows = []
    for key, run in sorted(runs.items(), key=lambda kv: kv[1].rel):
        gp, res = run.result["grid_point"], run.result
        overall = res.get("overall") or {}
        row = {"run": run.rel, "stage": key[0], "pretrain": gp.get("pretrain"), "augment": gp.get("augment"),
               "finetune": gp.get("finetune"), "downstream": gp.get("downstream"),
               "n_excerpts": res.get("n_excerpts"), "n_excluded": res.get("n_excluded"),
               "sisdr_mean": overall.get("mean"), "sisdr_median": overall.get("median"),
               "sisdr_std": overall.get("std"), "sisdr_n": overall.get("n"),
               "curve_points": None if run.curve is None else len(run.curve)}
        for s, st in (res.get("per_source") or {}).items():
            row[f"sisdr_{s}"] = (st or {}).get("mean")
        for k, v in (res.get("extra") or {}).items():
            if isinstance(v, (str, int, float, bool)) or v is None:
                row[f"extra_{k}"] = v
        rows.append(row)
    return pd.DataFrame(rows)


def _csv(df: pd.DataFrame, path: Path) -> Path:
    return atomic_write_text(path, df.to_csv(index=False, lineterminator="\n"))


def write_report(runs_dir: str | Path, out: str | Path, alpha: float = ALPHA,
                 downstream: list[str] | None = None) -> dict:
    """Write every output of the report; returns {name: path} plus 'missing' and 'problems'."""
    runs_dir, out = Path(runs_dir), Path(out)
    runs, problems = scan(runs_dir)
    downs = downstream_order(downstream or {k[-1] for k in runs})
    rows = run_tests(runs, downs, alpha)
    paths: dict = draw_figures(out, runs, downs, rows, alpha)
    tests = pd.DataFrame(rows, columns=TEST_COLUMNS)
    tests["n"] = tests["n"].astype("Int64")
    t2 = table2(rows, downs)
    t2["n"] = t2["n"].astype("Int64")
    paths["tests"] = _csv(tests, out / "tests.csv")
    paths["table2_csv"] = _csv(t2, out / "table2_mask_minus_whole.csv")
    t2_md = table2_markdown(t2, downs, alpha)
    paths["table2_md"] = atomic_write_text(out / "table2_mask_minus_whole.md", t2_md)
    paths["table2_png"] = _table2_png(out / "table2_mask_minus_whole.png", t2, downs, alpha)
    summ = summary(runs)
    paths["summary"] = _csv(summ, out / "summary.csv")
    missing = missing_keys(runs, downs)
    for run in runs.values():
        problems += [f"{run.rel}: {n}" for n in run.notes]
    md = markdown_report(runs_dir=runs_dir, alpha=alpha, downs=downs, runs=runs, tests=tests,
                         table2_md=t2_md, missing=missing, problems=problems,
                         created=_dt.datetime.now().isoformat(timespec="seconds"))
    paths["report"] = atomic_write_text(out / "report.md", md)
    paths["missing"], paths["problems"] = missing, problems
    return paths


def _table2_png(path: Path, t2: pd.DataFrame, downs: list[str], alpha: float) -> Path:
    rows = [(a, c) for a in AUGMENTS for c in CORPORA]
    cells = np.full((len(rows), len(downs)), "—", dtype=object)
    bold = np.zeros((len(rows), len(downs)), dtype=bool)
    for i, (a, c) in enumerate(rows):
        for j, d in enumerate(downs):
            r = t2[(t2.augment == a) & (t2.pretrain == c) & (t2.downstream == d)].iloc[0]
            v = r["mask_minus_whole_db"]
            if v is not None and not (isinstance(v, float) and math.isnan(v)):
                cells[i, j] = f"{v:+.2f}"
                bold[i, j] = bool(r["significant_increase"])
    return figures.table_image(
        path, "Table 2: SI-SDR of mask-model minus whole-model (dB)",
        [f"{AUG_LABELS[a]} / {LABELS[c]}" for a, c in rows], [LABELS.get(d, d) for d in downs], cells, bold,
        f"bold, shaded = significant increase (one-sided Wilcoxon, p < {alpha:g}); — = missing run")


def log_wandb(paths: dict, out: Path, project: str, entity: str | None, alpha: float) -> str:
    """Log the figures and tables to a W&B run (offline when no login is configured); returns mode."""
    from transfersep.runlog import wandb_mode

    import wandb

    mode = wandb_mode()
    run = wandb.init(project=project, entity=entity, job_type="report", mode=mode, dir=str(out),
                     config={"alpha": alpha})
    try:
        run.log({k: wandb.Image(str(paths[k])) for k in ("fig1", "fig2", "fig3", "table2_png")})
        for k in ("tests", "table2_csv", "summary"):
            df = pd.read_csv(paths[k])
            run.log({k: wandb.Table(dataframe=df.astype(object).where(df.notna(), None))})
    finally:
        run.finish()
    return mode


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m transfersep.eval.report",
                                description="Figures 1-3, Table 2 and tests of a study's runs.")
    p.add_argument("runs_dir", type=Path, help="directory scanned recursively for result.json")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--alpha", type=float, default=ALPHA, help="significance threshold (default 0.001)")
    p.add_argument("--downstream", nargs="+", default=None,
                   help="downstream sets the study should have (default: those found)")
    p.add_argument("--wandb", action="store_true", help="also log the figures and tables to W&B")
    p.add_argument("--wandb-project", default="transfersep")
    p.add_argument("--wandb-entity", default=None)
    a = p.parse_args(argv)
    if not a.runs_dir.is_dir():
        p.error(f"runs directory {a.runs_dir} does not exist")
    if not 0 < a.alpha < 1:
        p.error(f"--alpha must be in (0, 1), got {a.alpha}")
    paths = write_report(a.runs_dir, a.out, a.alpha, a.downstream)
    print(f"report: {paths['report']}")
    n_miss, n_prob = len(paths["missing"]), len(paths["problems"])
    print(f"{n_miss} grid point(s) missing, {n_prob} problem(s); see report.md")
    if a.wandb:
        mode = log_wandb(paths, a.out, a.wandb_project, a.wandb_entity, a.alpha)
        print(f"logged to W&B ({mode})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
