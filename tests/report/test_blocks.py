"""Independent units and the statistics over them, on hand-made tables whose answers are known
(counted by hand in each test)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from transfersep.report.blocks import origins_of, unit_means, units
from transfersep.report.drift import corr_time, lag_one
from transfersep.report.stats import independent_paired, mean_interval, smallest_p, unit_statistics, wilcoxon_paired


def coherent(rows, sources=("a", "b"), seconds=10.0) -> pd.DataFrame:
    """rows: (excerpt, track, start_s); every source of an excerpt from that track and start."""
    return pd.DataFrame(
        [
            {"excerpt": e, "source": s, "track": t, "start_s": float(st), "seconds": seconds}
            for e, t, st in rows
            for s in sources
        ]
    )


def spans_share_audio(o: pd.DataFrame, a, b) -> bool:
    """Whether excerpts a and b read any common second of any track (naive pairwise check)."""
    ra, rb = o[o.excerpt == a], o[o.excerpt == b]
    return any(
        ta == tb and sa < sb + lb and sb < sa + la
        for ta, sa, la in zip(ra.track, ra.start_s, ra.seconds)
        for tb, sb, lb in zip(rb.track, rb.start_s, rb.seconds)
    )


def test_time_blocks_drop_the_excerpts_that_straddle_a_cut():
    # 10-s excerpts at these starts on one piece: greedy cuts at 0, 10, 25. Blocks [0, 10),
    # [10, 25), [25, inf). 4 (4..14) and 9.9 straddle the cut at 10; 15 (15..25) fits in [10, 25)
    starts = [0, 4, 9.9, 10, 15, 25]
    o = coherent([(e, "piece", s) for e, s in enumerate(starts)])
    u = units(o)
    assert u.kind == "time block" and u.n_units == 3
    assert u.dropped == [1, 2]
    assert u.unit.to_dict() == {0: 0, 3: 1, 4: 1, 5: 2}


def test_no_two_units_share_audio_on_a_dense_piece():
    # one short piece: 100 overlapping 2-s excerpts of a 16-s piece
    starts = np.linspace(0, 14, 100)
    o = coherent([(e, "piece", s) for e, s in enumerate(starts)], seconds=2.0)
    u = units(o)
    assert u.kind == "time block" and u.n_units == 7  # cuts at 0, 2.0.., 12.0.. (greedy)
    kept = list(u.unit.index)
    assert len(kept) + len(u.dropped) == 100
    for a, b in itertools.combinations(kept, 2):
        if u.unit[a] != u.unit[b]:
            assert not spans_share_audio(o, a, b), (a, b)


def test_incoherent_excerpts_share_units_through_any_track():
    # excerpt 0 = A + B, 1 = B + C (shares B with 0), 2 = D + E, 3 = E + F (shares E), 4..6 alone
    spans = {
        0: [("A", 0), ("B", 0)],
        1: [("B", 5), ("C", 0)],
        2: [("D", 0), ("E", 0)],
        3: [("E", 40), ("F", 0)],
        4: [("G", 0), ("H", 0)],
        5: [("I", 0), ("J", 0)],
        6: [("K", 0), ("L", 0)],
    }
    o = pd.DataFrame(
        [
            {"excerpt": e, "source": src, "track": t, "start_s": float(s), "seconds": 10.0}
            for e, parts in spans.items()
            for src, (t, s) in zip("ab", parts)
        ]
    )
    u = units(o)
    assert u.kind == "track" and u.n_units == 5 and u.dropped == []  # {0,1}, {2,3}, {4}, {5}, {6}
    assert list(u.unit) == [0, 0, 1, 1, 2, 3, 4]


def test_two_tracks_give_two_units_and_unit_means_average_within_them():
    o = coherent([(e, "A", e) for e in range(5)] + [(e, "B", e - 5) for e in range(5, 10)])
    u = units(o, min_tracks=2)
    assert u.kind == "track" and u.n_units == 2
    d = pd.Series([1.0, 2.0, 3.0, np.nan, 4.0] + [5.0] * 5, index=range(10))
    assert list(unit_means(d, u.unit)) == [2.5, 5.0]  # (1 + 2 + 3 + 4) / 4: NaN left out


def test_origins_of_filled_and_empty_tables():
    table = pd.DataFrame({"excerpt": [0], "source": ["a"], "sisdr_db": [1.0], "silent_reference": [0]})
    new = table.assign(track=["T"], start_s=[1.5], seconds=[2.0])
    assert origins_of(new).to_dict("records") == [
        {"excerpt": 0, "source": "a", "track": "T", "start_s": 1.5, "seconds": 2.0}
    ]
    assert origins_of(new.assign(track=[np.nan])) is None  # a test set that cannot say


def test_unit_statistics_by_hand():
    # 5 units all positive: W+ = 15 is reached by one sign pattern of 32: p = 1/32, the smallest
    s = unit_statistics(np.array([0.5, 1.0, 1.5, 2.0, 2.5]), alpha=0.05)
    assert s.n == 5 and s.p == pytest.approx(1 / 32) and s.min_p == pytest.approx(1 / 32)
    assert s.reachable and s.significant and s.mean == 1.5 and s.median == 1.5
    assert s.mean_ci is None and s.median_ci is None  # 5 units: too few for an interval
    assert not unit_statistics(np.array([0.5, 1.0, 1.5, 2.0, 2.5])).reachable  # at .001 it cannot be
    # 10 units, one negative of rank 1: W+ >= 54 <=> the negative ranks sum to <= 1: {}, {1} -> 2/1024
    d = np.array([-0.1, 1, 2, 3, 4, 5, 6, 7, 8, 9.0])
    s = unit_statistics(d)
    assert s.p == pytest.approx(2 / 1024) and s.min_p == pytest.approx(1 / 1024) and s.reachable
    assert not s.significant
    # t-interval: mean +- t(9, .975) * sd / sqrt(10), by hand
    half = 2.2621571627409915 * np.std(d, ddof=1) / np.sqrt(10)
    assert s.mean_ci == pytest.approx((d.mean() - half, d.mean() + half))
    # order-statistic interval of the median, n = 10: P(Bin(10, .5) <= 1) = 11/1024 <= .025 <
    # P(<= 2) = 56/1024, so [x(2), x(9)] (1-based) covers with 1 - 2 * 11/1024 >= 95 %
    srt = np.sort(d)
    assert s.median_ci == (srt[1], srt[8])
    assert smallest_p(10, "two-sided") == pytest.approx(2 / 1024) and smallest_p(0) is None
    assert unit_statistics(np.zeros(4)).p == 1.0


def test_paper_significant_but_not_over_units():
    # 100 overlapping 2-s excerpts of one 16-s piece, the first model always 0.2 dB better (one
    # short test piece): the paper's test is overwhelming, 7 time blocks cannot be
    starts = np.linspace(0, 14, 100)
    o = coherent([(e, "piece", s) for e, s in enumerate(starts)], seconds=2.0)
    rng = np.random.default_rng(0)
    y = pd.Series(rng.normal(0, 1, 100))
    x = y + 0.2 + rng.uniform(0, 0.01, 100)
    paper = wilcoxon_paired(x, y)
    ind = independent_paired(x, y, o)
    assert paper.significant and paper.p < 1e-15
    u = units(o)
    means = (x - y)[u.unit.index].groupby(u.unit).mean()
    assert ind.unit_kind == "time block" and ind.units.n == 7 and ind.n_dropped == len(u.dropped)
    assert ind.units.p == pytest.approx(sps.wilcoxon(means, alternative="greater").pvalue)
    assert ind.units.p == pytest.approx(1 / 2**7) and not ind.units.significant and not ind.units.reachable
    lo, hi = ind.units.mean_ci  # 7 >= 6 units: an interval is given
    assert 0.2 <= lo < hi <= 0.21
    assert ind.note == "7 time blocks cannot reach α = 0.001 (smallest p 0.00781)"


def test_without_origins_nothing_is_claimed():
    x, y = pd.Series([1.0, 2.0, 3.0]), pd.Series([0.0, 0.0, 0.0])
    ind = independent_paired(x, y, None)
    assert ind.unit_kind is None and ind.units is None and "no units" in ind.note
    assert mean_interval(x, None) is None


def test_a_runs_interval_is_over_its_track_means():
    o = coherent([(e, f"T{e // 3}", 0.0) for e in range(18)])  # 6 tracks of 3 excerpts
    v = pd.Series(np.arange(18.0))
    centre, lo, hi = mean_interval(v, o)
    tm = np.arange(18.0).reshape(6, 3).mean(1)
    half = sps.t.ppf(0.975, 5) * tm.std(ddof=1) / np.sqrt(6)
    assert (centre, lo, hi) == pytest.approx((tm.mean(), tm.mean() - half, tm.mean() + half))
    assert mean_interval(v[:15], o[o.excerpt < 15]) is None  # 5 tracks: no interval


def one_piece(n=100, piece_s=30.8, seconds=1.0) -> pd.DataFrame:
    return coherent([(e, "piece", s) for e, s in enumerate(np.linspace(0, piece_s - seconds, n))], seconds=seconds)


def test_lag_one_by_hand():
    # one track, block means x at 1-s spacing, centred on their mean
    t = pd.DataFrame({"track": "p", "mid": np.arange(8.0) + 0.5, "mean": [1.0, -1, 2, 0, 1, -2, 0, 1], "n": 1})
    x = t["mean"].to_numpy() - t["mean"].mean()
    r = (x[1:] * x[:-1]).sum() / (x @ x)
    rho = (8 * r + 1) / 5  # Kendall's bias correction, n = 8
    got = lag_one(t)
    assert -1 < rho < 0.98 and got[0] == pytest.approx(rho) and got[2] == 1.0 and got[3] == 7
    assert got[1] == pytest.approx(np.clip(rho + np.sqrt((1 - rho**2) / 7), 0.0, 0.98))
    assert corr_time(np.exp(-0.5), 1.0) == pytest.approx(2.0) and corr_time(-0.2, 1.0) == 0.0


def test_a_drifting_difference_merges_time_blocks_and_an_alternating_one_does_not():
    o = one_piece()
    mid = np.linspace(0, 29.8, 100) + 0.5
    y = pd.Series(np.zeros(100))
    drift = independent_paired(pd.Series(np.sin(2 * np.pi * mid / 12.0)), y, o)
    raw = units(o)
    assert drift.claim == "these pieces" and drift.unit_kind == "time block"
    assert drift.n_raw_blocks == raw.n_units and drift.units.n < raw.n_units / 3
    assert drift.corr_s > 1.0 and "merged for drift" in drift.note
    u = raw.unit
    alternating = pd.Series(np.where(u.reindex(range(100)).fillna(0).to_numpy() % 2 == 0, 1.0, -1.0) + 0.01)
    flat = independent_paired(alternating, y, o)
    assert flat.units.n == raw.n_units and flat.corr_s == 0.0 and "merged" not in flat.note


def test_track_units_claim_pieces_like_these_and_missing_origins_are_counted():
    o = coherent([(e, f"T{e // 3}", 0.0) for e in range(18)])
    o.loc[o.excerpt == 4, "track"] = ""  # an empty origin cell: excerpt 4 has no origin
    o = origins_of(o.assign(sisdr_db=0.0))
    assert 4 not in set(o.excerpt) and {"T0", "T1"} <= set(o.track)
    t = independent_paired(pd.Series(np.arange(18.0)), pd.Series(np.zeros(18)), o)
    assert t.claim == "pieces like these" and t.n_raw_blocks is None and t.units.n == 6
    assert t.n_missing_origin == 1 and "1 excerpt(s) without an origin left out" in t.note
