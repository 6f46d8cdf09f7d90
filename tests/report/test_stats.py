"""Paired Wilcoxon tests: against scipy, against a hand enumeration, and the pairing rules."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from transfersep.report.scores import excerpt_scores
from transfersep.report.stats import TestSetMismatch, check_same_test_set, wilcoxon_paired


def series(values, ids=None) -> pd.Series:
    return pd.Series(np.asarray(values, dtype=float), index=list(range(len(values))) if ids is None else ids)


def exact_upper_p(d: np.ndarray) -> tuple[float, float]:
    """W+ and P(W+ >= observed) by enumerating all 2^n sign patterns (no ties, no zeros)."""
    ranks = stats.rankdata(np.abs(d))
    w = ranks[d > 0].sum()
    n = len(d)
    count = sum(1 for signs in itertools.product([0, 1], repeat=n) if (ranks * signs).sum() >= w)
    return w, count / 2**n


def test_hand_computed_all_positive():
    # d = 1..5: W+ = 15, only the all-positive pattern reaches it: p = 1/32
    x, y = series([1, 2, 3, 4, 5]), series([0, 0, 0, 0, 0])
    t = wilcoxon_paired(x, y)
    assert t.statistic == 15 and t.p == pytest.approx(1 / 32) and t.n == 5
    assert t.direction == "x>y" and t.median_diff == 3 and not t.significant
    assert wilcoxon_paired(x, y, alpha=0.05).significant


def test_hand_computed_one_negative():
    # d = 1, -2, 3, 4, 5: W+ = 13; W+ >= 13 <=> negative ranks sum <= 2: {}, {1}, {2} -> p = 3/32
    d = np.array([1.0, -2.0, 3.0, 4.0, 5.0])
    t = wilcoxon_paired(series(d + 10), series(np.full(5, 10.0)))
    assert t.statistic == 13 and t.p == pytest.approx(3 / 32)
    assert exact_upper_p(d) == (13, pytest.approx(3 / 32))


def test_matches_scipy_and_enumeration():
    rng = np.random.default_rng(3)
    x = rng.normal(0.3, 1.0, size=12)
    y = rng.normal(0.0, 1.0, size=12)
    t = wilcoxon_paired(series(x), series(y))
    ref = stats.wilcoxon(x, y, alternative="greater")
    assert t.statistic == pytest.approx(ref.statistic) and t.p == pytest.approx(ref.pvalue)
    w, p = exact_upper_p(x - y)
    assert t.statistic == pytest.approx(w) and t.p == pytest.approx(p)
    # large n: the normal approximation, as scipy does it
    x, y = rng.normal(0.2, 1, 400), rng.normal(0, 1, 400)
    t = wilcoxon_paired(series(x), series(y), alternative="less", alpha=0.01)
    ref = stats.wilcoxon(x, y, alternative="less")
    assert t.p == pytest.approx(ref.pvalue) and t.alternative == "less"
    assert t.mean_diff == pytest.approx(np.mean(x - y))


def test_pairs_by_excerpt_id_not_position():
    rng = np.random.default_rng(4)
    x = rng.normal(1, 1, 20)
    y = rng.normal(0, 1, 20)
    ids = [f"e{i}" for i in range(20)]
    perm = rng.permutation(20)
    shuffled = pd.Series(y[perm], index=[ids[i] for i in perm])
    t = wilcoxon_paired(pd.Series(x, index=ids), shuffled)
    assert t.p == pytest.approx(stats.wilcoxon(x, y, alternative="greater").pvalue)


def test_different_excerpt_lists_are_an_error():
    with pytest.raises(TestSetMismatch, match="same test excerpts"):
        wilcoxon_paired(series([1, 2, 3]), series([1, 2, 3], ids=[0, 1, 5]))
    with pytest.raises(TestSetMismatch):
        check_same_test_set("aaaa", "bbbb")
    check_same_test_set("aaaa", "aaaa")
    check_same_test_set(None, "bbbb")  # unknown fingerprint: ids alone decide


def test_nan_pairs_dropped_and_identical_scores():
    x = series([np.nan, 1, 2, 3, 4, 5, 6])
    y = series([0.0, 0, 0, 0, 0, 0, 0])
    t = wilcoxon_paired(x, y)
    assert t.n == 6 and t.p == pytest.approx(1 / 64)
    same = wilcoxon_paired(series([1, 2, 3]), series([1, 2, 3]))
    assert same.p == 1.0 and same.direction == "x=y" and not same.significant


def test_excerpt_scores_from_table():
    df = pd.DataFrame(
        {
            "excerpt": [0, 0, 1, 1, 2, 2],
            "source": ["a", "b"] * 3,
            "sisdr_db": [1.0, np.nan, 2.0, 4.0, np.nan, np.nan],
            "silent_reference": [0, 1, 0, 0, 1, 1],
        }
    )
    s = excerpt_scores(df.sample(frac=1, random_state=0))  # row order must not matter
    assert s.loc[0] == 1.0 and s.loc[1] == 3.0 and np.isnan(s.loc[2])


def test_read_scores_keeps_na_track_names_and_refuses_infinite_scores(tmp_path):
    from transfersep.report.blocks import origins_of
    from transfersep.report.scores import read_scores

    path = tmp_path / "scores.csv"
    path.write_text(
        "excerpt,source,sisdr_db,silent_reference,track,start_s,seconds\n"
        "0,a,1.5,0,NA,0.0,1.0\n1,a,nan,1,None,2.0,1.0\n2,a,2.0,0,,,\n3,a,0.5,0,null,1.0,1.0\n"
    )
    df = read_scores(path)
    assert list(df["track"]) == ["NA", "None", "", "null"] and np.isnan(df["sisdr_db"][1])
    o = origins_of(df)
    assert list(o["track"]) == ["NA", "None", "null"] and list(o["excerpt"]) == [0, 1, 3]  # 2 has no origin
    path.write_text(path.read_text().replace("3,a,0.5,0", "3,a,-inf,0"))
    with pytest.raises(ValueError, match=r"scores.csv: excerpt 3 source a has an infinite SI-SDR.*re-evaluate the run"):
        read_scores(path)
