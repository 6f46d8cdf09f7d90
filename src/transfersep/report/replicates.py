"""The report's recipe columns: what the replicates of two grid points say about their recipes.

A grid point trained once supports a claim about that trained model on that test audio (the
paper's column and the per-unit column of ``comparisons``). A claim about the *recipe* (pretraining
then fine-tuning beats training from scratch, whatever the seed) needs the training repeated: the
study's ``seed`` and ``fold`` keys (``run.point.REPLICATE_KEYS``). Here each replicate is one unit:

- the unit difference of a comparison is the mean SI-SDR of x minus that of y, both trained at the
  same (fold, seed) — same fold, so the same test pieces; the seed index pairs runs arbitrarily,
  which is harmless because replicates of different seeds are independent;
- ``recipe.recipe_test`` turns the unit differences into the mean, its interval, the one-sided
  t-test over units (corrected for the overlap of training sets when several folds share training
  pieces) and the probability that recipe x outperforms recipe y;
- per grid point: the mean over its replicates ± their standard deviation, and the 95 % t-interval
  of that mean (Figures 1 and 4 draw it when the study has two or more replicates).

Runs of one key are found by ``scan.scan_study`` (``Run.replicates``).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from transfersep.report.numbers import num
from transfersep.report.recipe import recipe_test
from transfersep.report.stats import ALPHA

RECIPE_COLUMNS = [
    "recipe_n",
    "recipe_folds",
    "recipe_seeds",
    "recipe_mean_diff_db",
    "recipe_sd_db",
    "recipe_ci_low",
    "recipe_ci_high",
    "p_recipe",
    "significant_recipe",
    "p_better",
    "p_better_low",
    "p_better_high",
    "recipe_claim",
    "recipe_note",
    "recipe_by_fold",
]


def _means(run) -> dict:
    return run.replicate_means if run is not None else {}


def unit_differences(x, y) -> pd.Series:
    """(fold, seed) -> mean SI-SDR of x minus y, for every replicate both runs have."""
    mx, my = _means(x), _means(y)
    common = sorted(set(mx) & set(my))
    index = pd.MultiIndex.from_tuples(common, names=["fold", "seed"]) if common else None
    return pd.Series([mx[r] - my[r] for r in common], index=index, dtype=np.float64)


def test_train_ratio(x, y) -> float | None:
    """n_test / n_train of the comparison's folds (the larger of what x's and y's runs recorded)."""
    ratios = [
        r
        for run in (x, y)
        if run is not None
        for rep in (run.replicates or {run.replicate: run}).values()
        if (r := rep.test_train) is not None
    ]
    return max(ratios) if ratios else None


def recipe_columns(x, y, alpha: float = ALPHA) -> dict:
    """The recipe columns of one comparison row (``RECIPE_COLUMNS``; None where there is nothing)."""
    row: dict = {c: None for c in RECIPE_COLUMNS}
    row["significant_recipe"] = False
    d = unit_differences(x, y)
    if d.empty:
        return row
    t = recipe_test(d, test_train_ratio(x, y), "greater", alpha)
    row.update(
        recipe_n=t.n,
        recipe_folds=t.n_folds,
        recipe_seeds=t.n_seeds,
        recipe_mean_diff_db=t.mean,
        recipe_sd_db=t.sd,
        p_recipe=t.p,
        significant_recipe=bool(t.significant),
        p_better=t.p_better,
        recipe_claim=t.claim,
        recipe_note=t.note or None,
    )
    if t.ci:
        row["recipe_ci_low"], row["recipe_ci_high"] = t.ci
    if t.p_better_ci:
        row["p_better_low"], row["p_better_high"] = t.p_better_ci
    if t.n_folds > 1:  # each fold alone: its seeds on its own test pieces (the over-folds test has J - 1 df)
        row["recipe_by_fold"] = "; ".join(
            _fold_reading(f, d.xs(f, level=0), alpha) for f in sorted(set(d.index.get_level_values(0)))
        )
    return row


def _fold_reading(fold: int, d: pd.Series, alpha: float) -> str:
    """``fold 1: +0.40 [-0.2, +1.0], p = 0.08 (3 seeds)``: one fold's recipe test over its seeds."""
    t = recipe_test(d, None, "greater", alpha)
    if t.n < 2:
        return f"fold {fold}: {t.mean:+.2f} (1 seed)"
    ci = f" [{t.ci[0]:+.2f}, {t.ci[1]:+.2f}]" if t.ci else ""
    return f"fold {fold}: {t.mean:+.2f}{ci}, p = {t.p:.3g} ({t.n} seeds)"


def replicate_summary(run, confidence: float = 0.95) -> dict:
    """A grid point over its replicates: n, mean, between-replicate sd, t-interval of the mean."""
    v = np.array(list(_means(run).values()), dtype=np.float64)
    n = int(v.size)
    out = {"n": n, "mean": float(v.mean()) if n else None, "sd": None, "low": None, "high": None}
    if n >= 2:
        sd = float(v.std(ddof=1))
        half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
        out.update(sd=sd, low=out["mean"] - half, high=out["mean"] + half)
    return out


def recipe_interval(run) -> tuple[float, float, float] | None:
    """(mean over replicates, low, high) of a grid point, or None below 2 replicates."""
    s = replicate_summary(run)
    return (s["mean"], s["low"], s["high"]) if s["low"] is not None else None


def has_replicates(runs: dict) -> bool:
    """Whether any grid point of the study was trained more than once."""
    return any(len(r.replicates) > 1 for r in runs.values())


def _f(v, fmt: str = "{:+.2f}") -> str:
    return num(v, fmt)


def recipe_markdown(tests: pd.DataFrame, family: str, alpha: float = ALPHA) -> str:
    """The recipe columns of one family's comparisons (only rows whose two grid points have runs)."""
    df = tests[tests.family.str.startswith(family) & tests.recipe_n.notna()]
    if df.empty or not (df.recipe_n >= 2).any():  # trained once: the one-model columns say it all
        return ""
    out = [
        f"Over replicates (the recipes; one unit per fold × seed; one-sided t-test, p < {alpha:g}):\n",
        "| downstream | x | y | units (folds × seeds) | mean diff [95 % CI] | sd | p | significant | "
        "P(x better) [95 % CI] | claim | each fold over its seeds (these test pieces) | note |",
        "|---|---|---|---|---:|---:|---:|---|---:|---|---|---|",
    ]
    for _, r in df.iterrows():
        n = int(r.recipe_n)
        ci = f" [{_f(r.recipe_ci_low)}, {_f(r.recipe_ci_high)}]" if not pd.isna(r.recipe_ci_low) else ""
        pb = _f(r.p_better, "{:.2f}")
        if not pd.isna(r.p_better_low):
            pb += f" [{_f(r.p_better_low, '{:.2f}')}, {_f(r.p_better_high, '{:.2f}')}]"
        sig = "**yes**" if r.significant_recipe else ("no" if n >= 2 else "—")
        note = r.recipe_note if isinstance(r.recipe_note, str) else ""
        out.append(
            f"| {r.downstream} | {r.x} | {r.y} | {n} ({_f(r.recipe_folds, '{:.0f}')} × "
            f"{_f(r.recipe_seeds, '{:.0f}')}) | {_f(r.recipe_mean_diff_db)}{ci} | {_f(r.recipe_sd_db, '{:.2f}')} | "
            f"{_f(r.p_recipe, '{:.3g}')} | {sig} | {pb} | {r.recipe_claim} | "
            f"{r.recipe_by_fold if isinstance(r.recipe_by_fold, str) else '—'} | {note} |"
        )
    return "\n".join(out) + "\n"


def replicates_markdown(runs: dict, describe) -> str:
    """Per grid point: its replicates' mean SI-SDR ± their standard deviation, and each value."""
    out = [
        "| grid point | model | replicates | mean ± sd (dB) | 95 % CI of the mean | (fold, seed): SI-SDR |",
        "|---|---|---:|---:|---:|---|",
    ]
    for key, run in sorted(runs.items(), key=lambda kv: kv[1].rel):
        s = replicate_summary(run)
        if not s["n"]:
            continue
        each = ", ".join(f"({f}, {sd}): {m:.2f}" for (f, sd), m in run.replicate_means.items())
        ci = f"[{s['low']:.2f}, {s['high']:.2f}]" if s["low"] is not None else "—"
        sd = f" ± {s['sd']:.2f}" if s["sd"] is not None else ""
        out.append(f"| {run.rel} | {describe(key)} | {s['n']} | {s['mean']:.2f}{sd} | {ci} | {each} |")
    return "\n".join(out) + "\n"
