"""Paired significance tests on per-excerpt SI-SDR (the paper: one-sided Wilcoxon, p < .001).

Two models are compared on the per-excerpt mean SI-SDR over non-silent sources
(``sisdr.excerpt_means``), paired by excerpt id. The pairs must come from the same fixed test
list: differing excerpt ids (or differing test-set fingerprints in result.json) raise
``TestSetMismatch`` rather than silently testing unrelated numbers. Excerpts whose score is NaN in
either model (every reference silent) are dropped from the pairs.

``scipy.stats.wilcoxon(x, y, alternative="greater")`` tests H1: x - y is shifted above 0 (x is
better). Its default ``zero_method="wilcox"`` discards zero differences; with ``method="auto"`` the
p-value is exact for n <= 50 without ties/zeros and from the normal approximation otherwise. No
multiple-comparison correction is applied (as in the paper); the threshold is a parameter.

``independent_paired`` says the same comparison with only independent observations counted: the
median and mean difference with block-bootstrap intervals over whole test tracks or time blocks,
their number, and the same Wilcoxon on non-overlapping excerpts (``transfersep.report.blocks``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from transfersep.evaluation.sisdr import excerpt_means

ALPHA = 0.001


class TestSetMismatch(ValueError):
    """The two score tables were not computed on the same test excerpts."""

    __test__ = False  # not a pytest class


@dataclass
class PairedTest:
    statistic: float | None  # Wilcoxon W+ (sum of ranks of positive differences x - y)
    p: float | None  # one-sided p-value for the alternative
    n: int  # pairs used (NaN pairs dropped; zero differences are in n but discarded by scipy)
    n_nonzero: int
    median_diff: float | None  # median of x - y, dB
    mean_diff: float | None  # mean of x - y (= difference of the overall means), dB
    direction: str  # "x>y", "x<y" or "x=y" (sign of the median difference)
    alternative: str
    alpha: float
    significant: bool  # p < alpha

    def as_dict(self) -> dict:
        return asdict(self)


def read_scores(path: str | Path) -> pd.DataFrame:
    """Read a scores.csv (``evaluate.SCORES_COLUMNS``)."""
    from transfersep.evaluation.evaluate import SCORES_COLUMNS

    df = pd.read_csv(path)
    missing = [c for c in SCORES_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(
            f"{path}: missing column(s) {missing}; a scores.csv has {','.join(SCORES_COLUMNS)} (evaluate the run again)"
        )
    return df


def excerpt_scores(scores: pd.DataFrame) -> pd.Series:
    """Per-excerpt mean over non-silent sources, indexed by excerpt id (NaN if all silent)."""
    df = scores.copy()
    df["silent_reference"] = df["silent_reference"].astype(bool)
    wide = df.pivot(index="excerpt", columns="source", values="sisdr_db")
    silent = df.pivot(index="excerpt", columns="source", values="silent_reference").fillna(True)
    means = excerpt_means(wide.to_numpy(dtype=np.float64), silent.to_numpy(dtype=bool))
    return pd.Series(means, index=wide.index, name="sisdr_db")


def align(x: pd.Series, y: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The paired values of two per-excerpt series; raises TestSetMismatch if the ids differ."""
    if x.index.has_duplicates or y.index.has_duplicates:
        raise ValueError("duplicate excerpt ids in a score table")
    if set(x.index) != set(y.index):
        only_x = sorted(set(x.index) - set(y.index))
        only_y = sorted(set(y.index) - set(x.index))
        raise TestSetMismatch(
            f"the two models were not evaluated on the same test excerpts ({len(x)} vs {len(y)}; "
            f"only in the first: {only_x[:5]}{'…' if len(only_x) > 5 else ''}, only in the second: "
            f"{only_y[:5]}{'…' if len(only_y) > 5 else ''}); re-evaluate both on one test list"
        )
    y = y.reindex(x.index)
    a, b = x.to_numpy(np.float64), y.to_numpy(np.float64)
    keep = ~(np.isnan(a) | np.isnan(b))
    return a[keep], b[keep]


def check_same_test_set(fp_x: str | None, fp_y: str | None) -> None:
    """Raise TestSetMismatch when both fingerprints are known and differ."""
    if fp_x and fp_y and fp_x != fp_y:
        raise TestSetMismatch(
            f"the test mixtures differ (test_set_sha1 {fp_x[:10]}… vs {fp_y[:10]}…): "
            "the models were evaluated on different excerpts"
        )


def wilcoxon_paired(x: pd.Series, y: pd.Series, alternative: str = "greater", alpha: float = ALPHA) -> PairedTest:
    """One-sided (by default) Wilcoxon signed-rank test of x against y, paired by excerpt id.

    Args:
        x, y: per-excerpt scores (``excerpt_scores``), indexed by excerpt id.
        alternative: "greater" (x better), "less" or "two-sided" — as scipy.
        alpha: significance threshold, ``significant = p < alpha``.
    """
    a, b = align(x, y)
    d = a - b
    n, n_nonzero = int(d.size), int(np.count_nonzero(d))
    median = float(np.median(d)) if n else None
    direction = "x=y" if not median else ("x>y" if median > 0 else "x<y")
    if n_nonzero == 0:  # identical scores (or nothing to pair): no evidence for any alternative
        stat, p = (0.0, 1.0) if n else (None, None)
    else:
        res = stats.wilcoxon(a, b, alternative=alternative)
        stat, p = float(res.statistic), float(res.pvalue)
    return PairedTest(
        statistic=stat,
        p=p,
        n=n,
        n_nonzero=n_nonzero,
        median_diff=median,
        mean_diff=float(d.mean()) if n else None,
        direction=direction,
        alternative=alternative,
        alpha=float(alpha),
        significant=bool(p is not None and p < alpha),
    )


@dataclass
class IndependentTest:
    """What the paired comparison says when only independent observations count
    (``transfersep.report.blocks``): intervals from a block bootstrap over whole units and the same
    one-sided Wilcoxon on pairwise non-overlapping excerpts only."""

    unit_kind: str | None  # "track" | "time block" | None (no origins: cannot block)
    n_independent: int  # units holding a paired difference
    median_ci: tuple[float, float] | None  # 95 % block-bootstrap interval of the median difference, dB
    mean_ci: tuple[float, float] | None
    n_nonoverlap: int  # non-overlapping excerpts paired
    p_nonoverlap: float | None  # one-sided Wilcoxon over those
    significant: bool  # p_nonoverlap < alpha
    note: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def independent_paired(
    x: pd.Series,
    y: pd.Series,
    origins: pd.DataFrame | None,
    alternative: str = "greater",
    alpha: float = ALPHA,
    confidence: float = 0.95,
    n_resamples: int = 9999,
    seed: int = 0,
) -> IndependentTest:
    """The independent counterpart of ``wilcoxon_paired`` (see ``IndependentTest``).

    ``origins``: the excerpt origins of the shared test list (``blocks.origins_of``), or None.
    """
    from transfersep.report.blocks import block_bootstrap, units

    if origins is None:
        return IndependentTest(
            None, 0, None, None, 0, None, False, "scores.csv has no track/start_s columns: cannot block"
        )
    align(x, y)  # raises TestSetMismatch on differing ids
    x, y = x.reindex(y.index), y
    d = (x - y).dropna()
    u = units(origins[origins["excerpt"].isin(d.index)])
    n_ind = int(u.unit.reindex(d.index).nunique())
    ci = {s: block_bootstrap(d, u.unit, s, confidence, n_resamples, seed) for s in ("median", "mean")}
    sel = [e for e in u.nonoverlap if e in d.index]
    t = wilcoxon_paired(x.loc[sel], y.loc[sel], alternative, alpha) if sel else None
    note = "" if n_ind >= 2 else "one independent unit: no interval"
    return IndependentTest(
        u.kind, n_ind, ci["median"], ci["mean"], len(sel), t.p if t else None, bool(t and t.significant), note
    )
