"""The recipe column against scipy and against the hand formula of the corrected variance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from transfersep.report.recipe import p_better_interval, recipe_test


def units(values, folds=1) -> pd.Series:
    """values in fold-major order, len(values) / folds seeds per fold."""
    per = len(values) // folds
    idx = pd.MultiIndex.from_tuples([(f, s) for f in range(folds) for s in range(per)], names=["fold", "seed"])
    return pd.Series(np.asarray(values, dtype=float), index=idx)


def test_one_fold_is_scipys_one_sample_t_test():
    v = np.array([0.4, -0.1, 0.3, 0.8, 0.2])
    t = recipe_test(units(v))
    ref = stats.ttest_1samp(v, 0.0, alternative="greater")
    ci = stats.ttest_1samp(v, 0.0).confidence_interval(0.95)
    assert (t.n, t.n_folds, t.n_seeds, t.claim) == (5, 1, 5, "recipe, these test pieces")
    assert t.p == pytest.approx(ref.pvalue) and t.ci == pytest.approx((ci.low, ci.high))
    assert t.mean == pytest.approx(v.mean()) and t.sd == pytest.approx(v.std(ddof=1))
    assert not t.significant and recipe_test(units(v), alpha=0.05).significant == (ref.pvalue < 0.05)
    assert recipe_test(units(v), alternative="two-sided").p == pytest.approx(stats.ttest_1samp(v, 0.0).pvalue)
    assert recipe_test(units(v), alternative="less").p == pytest.approx(1 - ref.pvalue)
    # 4 wins of 5: Clopper-Pearson from scipy; 5 units cannot exclude 1/2 even winning all
    assert t.p_better == 0.8
    band = stats.binomtest(4, 5).proportion_ci(0.95, method="exact")
    assert t.p_better_ci == pytest.approx((band.low, band.high))
    assert "too few for p_better" in t.note


def test_several_folds_use_the_nadeau_bengio_variance_over_fold_means():
    v = np.array([0.5, 0.7, 0.6, -0.2, 0.1, 0.0, 0.9, 1.1, 0.4])  # 3 folds x 3 seeds
    t = recipe_test(units(v, folds=3), test_train=0.5)
    fm = v.reshape(3, 3).mean(1)
    se = np.sqrt((1 / 3 + 0.5) * np.var(fm, ddof=1))  # by hand: (1/J + n_test/n_train) s^2
    tt = fm.mean() / se
    assert t.claim == "recipe, over folds of pieces" and (t.n, t.n_folds, t.n_seeds) == (9, 3, 3)
    assert t.p == pytest.approx(stats.t.sf(tt, 2))
    half = stats.t.ppf(0.975, 2) * se
    assert t.ci == pytest.approx((fm.mean() - half, fm.mean() + half))
    assert t.sd == pytest.approx(np.std(v, ddof=1))  # between units, as reported
    # no overlap correction: scipy's t-test over the fold means
    plain = recipe_test(units(v, folds=3), test_train=0.0)
    assert plain.p == pytest.approx(stats.ttest_1samp(fm, 0.0, alternative="greater").pvalue)
    assert plain.p < t.p  # the correction only widens
    assert "not corrected" in recipe_test(units(v, folds=3)).note
    # P(x better) over folds: 7 wins and a tie of 9 units, counted per fold (7.5/9 x 3 folds = 2.5 of 3)
    assert t.p_better == pytest.approx(7.5 / 9)
    assert t.p_better_ci == pytest.approx(
        (
            stats.binomtest(2, 3).proportion_ci(method="exact").low,
            stats.binomtest(3, 3).proportion_ci(method="exact").high,
        )
    )
    assert "3 folds: too few for p_better" in t.note


def test_one_unit_nan_and_ties():
    one = recipe_test(units([0.3]))
    assert one.claim == "one trained model" and one.p is None and one.ci is None and one.sd is None
    assert one.note.startswith("1 replicate: a claim about that trained model only") and not one.significant
    s = units([0.3, np.nan, 0.0, -0.1])
    t = recipe_test(s)
    assert t.n == 3 and t.p_better == pytest.approx(1.5 / 3)  # the tie counts 1/2, NaN dropped
    lo, hi = t.p_better_ci
    assert (lo, hi) == pytest.approx(p_better_interval(1.5, 3))
    assert lo == pytest.approx(stats.binomtest(1, 3).proportion_ci(method="exact").low)
    assert hi == pytest.approx(stats.binomtest(2, 3).proportion_ci(method="exact").high)
    empty = recipe_test(units([np.nan, np.nan]))
    assert empty.n == 0 and empty.p is None and not empty.significant
    assert recipe_test(pd.Series([0.2, 0.4, 0.3])).n_folds == 1  # a plain index: seeds of one fold
    same = recipe_test(units([0.0, 0.0, 0.0]))
    assert same.p == 1.0 and same.ci == (0.0, 0.0)
    d = recipe_test(units([0.5, 0.5, 0.5]))
    assert d.p == 0.0 and d.significant
