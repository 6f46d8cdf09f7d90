"""Paired significance tests on per-excerpt SI-SDR (the paper: one-sided Wilcoxon, p < .001).

Two models are compared on the per-excerpt mean SI-SDR over non-silent sources
(``scores.excerpt_scores``), paired by excerpt id. The pairs must come from the same fixed test
list: differing excerpt ids (or differing test-set fingerprints in result.json) raise
``TestSetMismatch`` rather than silently testing unrelated numbers. Excerpts whose score is NaN in
either model (every reference silent) are dropped from the pairs.

``scipy.stats.wilcoxon(x, y, alternative="greater")`` tests H1: x - y is shifted above 0 (x is
better). Its default ``zero_method="wilcox"`` discards zero differences; with ``method="auto"`` the
p-value is exact for n <= 50 without ties/zeros and from the normal approximation otherwise. No
multiple-comparison correction is applied (as in the paper); the threshold is a parameter.

``independent_paired`` says the same comparison with only independent observations counted: the
paired differences are averaged within each unit that shares no audio with another (whole test
tracks, or time blocks of a track: ``transfersep.report.blocks``), and the exact signed-rank test
and the intervals run over those per-unit means (``unit_statistics``), with the number of units and
the smallest p they can reach. Time blocks are merged against drift along the piece
(``transfersep.report.drift``); whether a claim is about "these pieces" (time blocks) or "pieces
like these" (tracks) is said in ``IndependentTest.claim``. A claim about a training recipe, with
the training noise counted, is ``transfersep.report.recipe``'s.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats

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
        x, y: per-excerpt scores (``scores.excerpt_scores``), indexed by excerpt id.
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


MIN_UNITS_INTERVAL = 6  # fewer units: "too few for an interval" (see ``unit_statistics``)


def smallest_p(n: int, alternative: str = "greater") -> float | None:
    """The smallest p-value a signed-rank (or sign-flip) test over ``n`` nonzero units can give:
    every unit on the side of the alternative, one sign pattern of 2^n (twice that two-sided)."""
    if n < 1:
        return None
    return min(1.0, (2.0 if alternative == "two-sided" else 1.0) * 0.5**n)


@dataclass
class UnitStatistics:
    """A paired comparison over independent units: one mean difference per unit."""

    n: int  # units holding a paired difference
    mean: float | None  # mean over units of the per-unit mean differences, dB
    median: float | None  # median over units, dB
    p: float | None  # one-sided (by default) exact Wilcoxon signed-rank p over the units
    min_p: float | None  # the smallest p these units can give (``smallest_p``)
    reachable: bool  # min_p < alpha: the test can establish significance at alpha at all
    significant: bool  # p < alpha
    mean_ci: tuple[float, float] | None  # t-interval of the mean; None below MIN_UNITS_INTERVAL units
    median_ci: tuple[float, float] | None  # order-statistic interval of the median; same rule


def unit_statistics(
    diffs: np.ndarray, alternative: str = "greater", alpha: float = ALPHA, confidence: float = 0.95
) -> UnitStatistics:
    """Test and intervals over independent per-unit differences ``diffs`` (one value per unit).

    - **Test**: ``scipy.stats.wilcoxon(diffs, method="exact")``: the exact signed-rank null
      distribution of the units (zero differences are discarded, as scipy's ``zero_method="wilcox"``).
      Exact for any n, it is calibrated whenever the unit differences are independent and
      symmetric about 0 under the null; with n units no p below ``smallest_p(n)`` = 2⁻ⁿ exists,
      so at α = .001 it takes 10 units to reach significance (``reachable``).
    - **Intervals**, given only from ``MIN_UNITS_INTERVAL`` (6) units on: the mean's Student-t
      interval over the units (``scipy.stats.ttest_1samp(...).confidence_interval``) and the
      median's distribution-free order-statistic interval (``scipy.stats.quantile_test(...,
      p=0.5).confidence_interval``). The threshold comes from simulation
      (``tests/report/test_calibration.py``): below 6 units no order-statistic interval reaches
      95 % (its best coverage is 1 − 2·2⁻ⁿ), and the coverage of a t-interval from 2–5 values rests
      on a normality that so few values cannot show; the block bootstrap these intervals replace
      covered 0 in 48 % (2 units) to 75 % (3 units) of null studies and about 90 % at 10–30 units.
      At 6 units and above the simulated coverage of both is within binomial error of 95 % or above.
    """
    d = np.asarray(diffs, dtype=np.float64)
    d = d[~np.isnan(d)]
    n = int(d.size)
    if n == 0:
        return UnitStatistics(0, None, None, None, None, False, False, None, None)
    nonzero = int(np.count_nonzero(d))
    if nonzero == 0:
        p = 1.0
    else:
        p = float(stats.wilcoxon(d, alternative=alternative, method="exact" if nonzero <= 1000 else "auto").pvalue)
    min_p = smallest_p(nonzero, alternative) if nonzero else 1.0
    mean_ci = median_ci = None
    if n >= MIN_UNITS_INTERVAL:
        t = stats.ttest_1samp(d, 0.0).confidence_interval(confidence)
        q = stats.quantile_test(d, q=0.0, p=0.5).confidence_interval(confidence)
        mean_ci = (float(t.low), float(t.high))
        median_ci = (float(q.low), float(q.high))
    return UnitStatistics(
        n=n,
        mean=float(d.mean()),
        median=float(np.median(d)),
        p=p,
        min_p=min_p,
        reachable=bool(min_p is not None and min_p < alpha),
        significant=bool(p < alpha),
        mean_ci=mean_ci,
        median_ci=median_ci,
    )


CLAIMS = {"track": "pieces like these", "time block": "these pieces"}


@dataclass
class IndependentTest:
    """What the paired comparison says when only independent units count
    (``transfersep.report.blocks``): ``UnitStatistics`` over the per-unit mean differences.

    ``claim``: "pieces like these" over track units (the tracks a sample of pieces), "these
    pieces" over time blocks (the null: no difference on these pieces' audio, its drift along
    time the noise). Time blocks are merged into super-blocks sized from the drift the scores
    show (``transfersep.report.drift``): ``n_raw_blocks`` before merging, ``corr_s`` the measured
    correlation time and ``block_s`` the super-blocks' mean length."""

    unit_kind: str | None  # "track" | "time block" | None (no origins: cannot form units)
    units: UnitStatistics | None
    n_dropped: int = 0  # excerpts left out because they straddle two time blocks
    note: str = ""
    claim: str = ""
    n_raw_blocks: int | None = None
    corr_s: float | None = None
    block_s: float | None = None
    n_missing_origin: int = 0  # excerpts left out because their scores.csv rows name no origin

    def as_dict(self) -> dict:
        return asdict(self)


def independent_paired(
    x: pd.Series,
    y: pd.Series,
    origins: pd.DataFrame | None,
    alternative: str = "greater",
    alpha: float = ALPHA,
    confidence: float = 0.95,
) -> IndependentTest:
    """The independent counterpart of ``wilcoxon_paired``: the paired differences x − y averaged
    within each independent unit (``blocks.units``; time blocks merged against drift by
    ``drift.super_blocks``), then ``unit_statistics`` over those means.

    ``origins``: the excerpt origins of the shared test list (``blocks.origins_of``), or None.
    Excerpts missing from it (an empty origin cell) are left out and counted.
    """
    from transfersep.report.blocks import unit_means, units
    from transfersep.report.drift import super_blocks

    if origins is None:
        return IndependentTest(None, None, 0, "scores.csv has no track/start_s/seconds columns: no units")
    align(x, y)  # raises TestSetMismatch on differing ids
    d = (x.reindex(y.index) - y).dropna()
    missing = int((~d.index.isin(origins["excerpt"])).sum())
    u = units(origins[origins["excerpt"].isin(d.index)])
    extra: dict = {}
    notes = [f"{missing} excerpt(s) without an origin left out"] if missing else []
    name = f"{u.kind}s"
    unit = u.unit
    if u.kind == "time block":
        sb = super_blocks(d, u.unit, origins)
        unit = sb.unit
        extra = {"n_raw_blocks": sb.n_raw, "corr_s": sb.corr_s, "block_s": sb.block_s}
        if not sb.measured:
            name = "tracks"
            notes.append(f"{sb.n_raw} time blocks: too few to measure drift, one unit per track")
        elif sb.n_units < sb.n_raw:
            name = f"super-blocks of ~{sb.block_s:.1f} s"
            notes.append(f"{sb.n_raw} time blocks merged for drift (correlation ~{sb.corr_s:.2g} s)")
    st = unit_statistics(unit_means(d, unit), alternative, alpha, confidence)
    if st.n and not st.reachable:
        notes.append(f"{st.n} {name} cannot reach α = {alpha:g} (smallest p {st.min_p:.3g})")
    if st.n and st.mean_ci is None:
        notes.append(f"{st.n} {name}: too few for an interval")
    dropped = len([e for e in u.dropped if e in d.index])
    return IndependentTest(u.kind, st, dropped, "; ".join(notes), CLAIMS[u.kind], n_missing_origin=missing, **extra)


def mean_interval(values: pd.Series, origins: pd.DataFrame | None, confidence: float = 0.95) -> tuple | None:
    """``(mean over units, low, high)`` of one model's per-excerpt scores: the t-interval over its
    per-unit means (``unit_statistics``), or None without origins or below ``MIN_UNITS_INTERVAL`` units."""
    from transfersep.report.blocks import unit_means, units

    if origins is None:
        return None
    v = values.dropna()
    m = unit_means(v, units(origins[origins["excerpt"].isin(v.index)]).unit)
    st = unit_statistics(m, confidence=confidence)
    return (st.mean, *st.mean_ci) if st.mean_ci else None
