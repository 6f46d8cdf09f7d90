"""Calibration of the independent column by simulation: null studies with per-track effects and
overlapping windows, at the sizes the report meets, scored through ``blocks.units`` and
``stats.unit_statistics`` exactly as the report scores them.

Each study: excerpts at seeded starts (on a 0.5-s grid) of its tracks, a paired difference per
excerpt = the track's effect (normal) + the mean over the excerpt's 0.5-s frames of a local effect
per frame (normal, shared by every excerpt that reads that frame: overlapping windows are
correlated) + the excerpt's own noise. Under this null every unit's mean difference is symmetric
about 0, so the signed-rank test's rejection rate must be its exact size and the intervals must
cover 0 at their level, within binomial error (``scipy.stats.binomtest``). The exact size is
counted here by enumerating the signed-rank distribution, independently of scipy.

The drift studies (``DRIFT``) add what real scores carry: a paired difference that drifts along
each track (an Ornstein–Uhlenbeck process on a 0.05-s grid, averaged over each excerpt's window),
per-take offsets (centred: fixed properties of the test takes, so "no difference on these pieces"
holds) and excerpt noise, at the demo's and the paper's sizes, and score them as
``stats.independent_paired`` does (time blocks merged by ``drift``, vectorised here over the draws;
``test_blocks`` checks the product functions one draw at a time). The recipe studies (``RECIPE``)
draw per-(fold, seed) differences: a fold effect correlated across folds as overlapping training
sets make it (Nadeau & Bengio's model: correlation n_test / (n_test + n_train)) plus a replicate
effect of mean 0, and score them with ``recipe.recipe_test``.

Run as a script (``python tests/report/test_calibration.py``) it prints the measured rates, the
numbers in docs/statistics.md.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from transfersep.report.blocks import units
from transfersep.report.drift import MIN_RAW_BLOCKS, assign, block_table, group_size, lag_one_arrays
from transfersep.report.recipe import recipe_test
from transfersep.report.stats import MIN_UNITS_INTERVAL, unit_statistics, wilcoxon_paired

FRAME = 0.5  # s
# name: (tracks, track seconds, excerpts, excerpt seconds, track-effect sd, draws)
SCENARIOS = {
    "few long tracks (10 x 180 s, 150 excerpts of 10 s)": (10, 180.0, 150, 10.0, 1.0, 3000),
    "many short tracks (60 x 20 s, 600 excerpts of 10 s)": (60, 20.0, 600, 10.0, 1.0, 1000),
    "one piece (16 s, 100 excerpts of 2 s: time blocks)": (1, 16.0, 100, 2.0, 0.0, 3000),
}


def signed_rank_size(n: int, alpha: float) -> float:
    """P(p < alpha) of the exact one-sided signed-rank test over n units under the null: the
    distribution of W+ counted by dynamic programming over the subsets of ranks 1..n."""
    top = n * (n + 1) // 2
    counts = np.zeros(top + 1)
    counts[0] = 1.0
    for r in range(1, n + 1):
        counts[r:] = counts[r:] + counts[:-r].copy()
    pmf = counts / 2.0**n
    upper = np.cumsum(pmf[::-1])[::-1]  # P(W+ >= w)
    return float(pmf[upper < alpha].sum())


def design(n_tracks: int, track_s: float, n_ex: int, ex_s: float, seed: int):
    """Fixed test list: origins, the track of each excerpt, its frames (as a matrix averaging
    per-frame effects) and its unit (None when dropped)."""
    rng = np.random.default_rng(seed)
    per = int(round(ex_s / FRAME))
    grid = int(round((track_s - ex_s) / FRAME)) + 1
    track = np.sort(rng.integers(0, n_tracks, n_ex))
    start = rng.integers(0, grid, n_ex)
    o = pd.DataFrame(
        {"excerpt": np.arange(n_ex), "source": "a", "track": [f"t{t}" for t in track], "start_s": start * FRAME}
    ).assign(seconds=ex_s)
    frames_per_track = int(round(track_s / FRAME))
    avg = np.zeros((n_ex, n_tracks * frames_per_track))
    for e in range(n_ex):
        first = track[e] * frames_per_track + start[e]
        avg[e, first : first + per] = 1.0 / per
    return o, track, avg, units(o)


def simulate(name: str, seed: int = 0) -> dict:
    n_tracks, track_s, n_ex, ex_s, track_sd, draws = SCENARIOS[name]
    o, track, avg, u = design(n_tracks, track_s, n_ex, ex_s, seed)
    rng = np.random.default_rng(seed + 1)
    d = (
        rng.normal(0, track_sd, (draws, n_tracks))[:, track]
        + rng.normal(0, 1.0, (draws, avg.shape[1])) @ avg.T
        + rng.normal(0, 0.5, (draws, n_ex))
    )
    kept = u.unit.index.to_numpy()
    members = np.zeros((n_ex, u.n_units))
    members[kept, u.unit.to_numpy()] = 1.0
    unit_d = (d @ members) / members.sum(0)  # per-unit means, as blocks.unit_means
    rej = {0.001: 0, 0.05: 0}
    paper_rej = 0
    cover_mean = cover_median = 0
    for i in range(draws):
        st = unit_statistics(unit_d[i], alpha=0.001)
        for a in rej:
            rej[a] += st.p < a
        if st.mean_ci:
            cover_mean += st.mean_ci[0] <= 0 <= st.mean_ci[1]
            cover_median += st.median_ci[0] <= 0 <= st.median_ci[1]
        if i < 300:  # the paper's per-excerpt test on the same null studies
            paper_rej += wilcoxon_paired(pd.Series(d[i]), pd.Series(np.zeros(n_ex))).p < 0.001
    return {
        "kind": u.kind,
        "units": u.n_units,
        "dropped": len(u.dropped),
        "draws": draws,
        "rejections": rej,
        "size": {a: signed_rank_size(u.n_units, a) for a in rej},
        "interval": u.n_units >= MIN_UNITS_INTERVAL,
        "cover_mean": cover_mean,
        "cover_median": cover_median,
        "paper_rate": paper_rej / min(300, draws),
    }


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_the_independent_column_is_calibrated_under_the_null(name: str) -> None:
    r = simulate(name)
    n = r["draws"]
    for a, k in r["rejections"].items():
        # the rejection rate is the test's exact size at alpha (never above alpha), within binomial error
        assert r["size"][a] <= a
        if r["size"][a] > 0:
            assert stats.binomtest(k, n, r["size"][a]).pvalue > 1e-3, (a, k / n, r["size"][a])
        else:
            assert k == 0  # too few units to reach alpha: never significant
    assert r["interval"] == (r["units"] >= 6)
    if r["interval"]:
        assert stats.binomtest(r["cover_mean"], n, 0.95).pvalue > 1e-3, r["cover_mean"] / n
        assert stats.binomtest(r["cover_median"], n, 0.95, alternative="less").pvalue > 1e-3
    # the same null studies under the paper's per-excerpt test: pseudo-replication, far above its 0.001
    assert r["paper_rate"] > 0.02, r["paper_rate"]


def test_the_scenarios_are_the_reports_sizes() -> None:
    """The designs hold what they claim: 10 and 60 track units, a piece cut into 7 time blocks
    with its straddling excerpts dropped."""
    few, many, piece = (design(*SCENARIOS[k][:4], seed=0)[3] for k in SCENARIOS)
    assert (few.kind, few.n_units, many.kind, many.n_units) == ("track", 10, "track", 60)
    assert piece.kind == "time block" and piece.n_units == 7 and piece.dropped


DT = 0.05  # s, the drift's time grid
TAUS = (0.25, 1.0, 2.0, 5.0)  # drift correlation times, s
# name: (tracks, track seconds, excerpts, excerpt seconds, draws)
DRIFT = {
    "Bach10-like: one 30.8-s piece, 100 excerpts of 1 s": (1, 30.8, 100, 1.0, 2000),
    "Dagstuhl-like: two 8-s takes, 100 excerpts of 1 s": (2, 8.0, 100, 1.0, 2000),
    "paper, one piece: 37 s, 1000 excerpts of 10 s": (1, 37.0, 1000, 10.0, 300),
    "paper, 20 tracks of 30 s, 1000 excerpts of 10 s": (20, 30.0, 1000, 10.0, 1000),
}


def signed_rank_pmf(n: int) -> np.ndarray:
    """Null distribution of W+ over n units (as ``signed_rank_size``)."""
    counts = np.zeros(n * (n + 1) // 2 + 1)
    counts[0] = 1.0
    for r in range(1, n + 1):
        counts[r:] = counts[r:] + counts[:-r].copy()
    return counts / 2.0**n


def signed_rank_p(x: np.ndarray) -> np.ndarray:
    """Exact one-sided p, P(W+ >= observed), of each row of ``x`` (draws, n): no ties, no zeros."""
    n = x.shape[1]
    ranks = np.argsort(np.argsort(np.abs(x), 1), 1) + 1
    w = (ranks * (x > 0)).sum(1)
    upper = np.cumsum(signed_rank_pmf(n)[::-1])[::-1]
    return upper[w]


def drift_draws(n_tracks, track_s, n_ex, ex_s, tau, draws, seed):
    """Origins and per-excerpt paired differences (draws, excerpts) of drift null studies."""
    rng = np.random.default_rng(seed)
    track = np.sort(rng.integers(0, n_tracks, n_ex)) if n_tracks > 1 else np.zeros(n_ex, dtype=int)
    start = np.round(rng.uniform(0, track_s - ex_s, n_ex) / DT) * DT
    o = pd.DataFrame({"excerpt": np.arange(n_ex), "source": "a", "track": [f"t{t:02d}" for t in track]})
    o = o.assign(start_s=start, seconds=ex_s)
    grid, per, phi = int(round(track_s / DT)), int(round(ex_s / DT)), np.exp(-DT / tau)
    x = np.empty((draws, n_tracks, grid))
    x[..., 0] = rng.normal(0, 1, (draws, n_tracks))
    shocks = rng.normal(0, np.sqrt(1 - phi**2), (draws, n_tracks, grid))
    for i in range(1, grid):  # AR(1) on the grid = Ornstein-Uhlenbeck with correlation time tau
        x[..., i] = phi * x[..., i - 1] + shocks[..., i]
    cs = np.concatenate([np.zeros((draws, n_tracks, 1)), np.cumsum(x, -1)], -1)
    i0 = np.round(start / DT).astype(int)
    d = (cs[:, track, i0 + per] - cs[:, track, i0]) / per
    offset = rng.normal(0, 0.5, (draws, n_tracks))
    if n_tracks < 5:  # time blocks claim "these pieces": the takes' offsets are fixed, centred
        offset -= offset.mean(1, keepdims=True)
    return o, d + offset[:, track] + rng.normal(0, 0.5, (draws, n_ex))


def dm_hln_p(raw: np.ndarray, same: np.ndarray, t: pd.DataFrame) -> np.ndarray:
    """The alternative not taken: Diebold-Mariano's one-sided p over the raw blocks with a
    Newey-West (Bartlett) variance of bandwidth h = ceil(measured correlation time / spacing) and
    the Harvey-Leybourne-Newbold correction, t with m - 1 degrees of freedom."""
    n = raw.shape[1]
    spacing = float(np.median(np.diff(t["mid"].to_numpy())[same]))
    rho = lag_one_arrays(raw, same)[0]
    tau = np.where(rho > 0, -spacing / np.log(np.where(rho > 0, rho, 0.5)), 0.0)
    h = np.minimum(np.maximum(1, np.ceil(tau / spacing)), n - 1)
    e = raw - raw.mean(1, keepdims=True)
    var = (e * e).sum(1) / n
    for k in range(1, n):
        var += 2 * np.where(k <= h, 1 - k / (h + 1), 0.0) * (e[:, k:] * e[:, :-k]).sum(1) / n
    hln = np.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    return stats.t.sf(hln * raw.mean(1) / np.sqrt(np.maximum(var, 1e-12) / n), n - 1)


RAW = False  # the script also scores the raw blocks and Diebold-Mariano-HLN (``__main__``)


def unit_columns(o: pd.DataFrame, d: np.ndarray) -> list:
    """Per-unit mean differences of each draw, as ``independent_paired`` forms them: track units,
    or time blocks merged by ``drift`` (one array of (draws, units) per distinct unit count)."""
    u = units(o)
    ex = u.unit.index.to_numpy()
    members = np.zeros((d.shape[1], u.n_units))
    members[ex, u.unit.to_numpy()] = 1.0
    raw = (d @ members) / members.sum(0)
    if u.kind == "track":
        return [raw]
    t = block_table(pd.Series(d[0]), u.unit, o)  # the design: track and time of each block
    order = t.index.to_numpy()
    tr = t["track"].to_numpy()
    same = tr[1:] == tr[:-1]
    per_track = t.groupby("track", sort=False).size().tolist()
    raw, w = raw[:, order], members.sum(0)[order]
    if len(t) < MIN_RAW_BLOCKS:
        size = np.full(len(d), len(t) + 1)
    else:
        size = group_size(lag_one_arrays(raw, same)[1], float(np.median(np.diff(t["mid"].to_numpy())[same])))
    out = [] if not RAW else [("raw", raw), ("dm", dm_hln_p(raw, same, t))]
    for g in np.unique(size):
        lab = assign(per_track, int(g))
        m = np.zeros((len(t), lab.max() + 1))
        m[np.arange(len(t)), lab] = w
        out.append((raw[size == g] @ m) / m.sum(0))
    return out


def drift_rates(name: str, tau: float, seed: int = 0) -> dict:
    n_tracks, track_s, n_ex, ex_s, draws = DRIFT[name]
    o, d = drift_draws(n_tracks, track_s, n_ex, ex_s, tau, draws, seed)
    rej = {0.05: 0, 0.001: 0}
    given = missed = 0
    ks = []
    alt = {}
    for x in unit_columns(o, d):
        if isinstance(x, tuple):  # the raw blocks and the Diebold-Mariano-HLN p (script only)
            name_, v = x
            p = signed_rank_p(v) if name_ == "raw" else v
            alt[name_] = {a: float((p < a).mean()) for a in (0.05, 0.001)}
            continue
        k = x.shape[1]
        ks += [k] * len(x)
        p = signed_rank_p(x) if k else np.ones(len(x))
        for a in rej:
            rej[a] += int((p < a).sum())
        if k >= MIN_UNITS_INTERVAL:
            half = stats.t.ppf(0.975, k - 1) * x.std(1, ddof=1) / np.sqrt(k)
            given += len(x)
            missed += int((np.abs(x.mean(1)) > half).sum())
    paper = sum(wilcoxon_paired(pd.Series(d[i]), pd.Series(np.zeros(n_ex))).p < 0.001 for i in range(200))
    return {
        "draws": draws,
        "rej": rej,
        "given": given,
        "missed": missed,
        "units": float(np.median(ks)),
        "kind": units(o).kind,
        "paper_rate": paper / 200,
        "alt": alt,
    }


@pytest.mark.parametrize("name", list(DRIFT))
def test_the_independent_column_holds_its_level_under_drift(name: str) -> None:
    for tau in TAUS if DRIFT[name][0] < 5 else TAUS[2:3]:
        r = drift_rates(name, tau)
        n = r["draws"]
        for a, k in r["rej"].items():  # at or below alpha, within binomial error
            assert stats.binomtest(k, n, a, alternative="greater").pvalue > 1e-3, (tau, a, k / n)
        # the share of studies that print an interval missing 0 stays within 5 %
        assert stats.binomtest(r["missed"], n, 0.05, alternative="greater").pvalue > 1e-3, (tau, r)
        if DRIFT[name][2] < 1000 or tau >= 1:
            assert r["paper_rate"] > 0.01, (tau, r["paper_rate"])  # the paper's column does not hold


def test_why_super_blocks_the_alternatives_over_reject_under_drift(monkeypatch) -> None:
    """The justification, kept: with a 2-s drift on the 30.8-s piece the raw time blocks and
    Diebold-Mariano-HLN over them reject far above alpha; the super-blocks do not."""
    import sys

    monkeypatch.setattr(sys.modules[__name__], "RAW", True)
    r = drift_rates("Bach10-like: one 30.8-s piece, 100 excerpts of 1 s", 2.0)
    n = r["draws"]
    assert stats.binomtest(round(r["alt"]["raw"][0.05] * n), n, 0.05, alternative="greater").pvalue < 1e-6
    assert stats.binomtest(round(r["alt"]["dm"][0.001] * n), n, 0.001, alternative="greater").pvalue < 1e-6
    assert r["rej"][0.001] / n <= 0.002 and r["rej"][0.05] / n <= 0.05


# name: (folds, seeds, n_test / n_train, fold-effect sd, replicate sd, draws)
RECIPE = {
    "1 fold x 3 replicates": (1, 3, None, 0.0, 0.3, 4000),
    "1 fold x 5 replicates": (1, 5, None, 0.0, 0.3, 4000),
    "3 folds x 3 replicates (n_test/n_train 1/2)": (3, 3, 0.5, 0.4, 0.3, 4000),
    "3 folds x 5 replicates (n_test/n_train 1/2)": (3, 5, 0.5, 0.4, 0.3, 4000),
}


def recipe_rates(name: str, seed: int = 0) -> dict:
    folds, seeds, tt, fold_sd, rep_sd, draws = RECIPE[name]
    rng = np.random.default_rng(seed)
    rho = tt / (1 + tt) if tt else 0.0  # overlap correlation of the folds' results
    fold = fold_sd * (np.sqrt(rho) * rng.normal(size=(draws, 1)) + np.sqrt(1 - rho) * rng.normal(size=(draws, folds)))
    d = fold[:, :, None] + rng.normal(0, rep_sd, (draws, folds, seeds))
    fm = d.mean(2)
    j = fm.shape[1] if folds > 1 else seeds
    v = fm if folds > 1 else d[:, 0, :]
    sd = v.std(1, ddof=1)
    out = {"draws": draws}
    for label, factor in (("corrected", 1 / j + (tt or 0.0)), ("plain", 1 / j)):
        t = v.mean(1) / (sd * np.sqrt(factor))
        p = stats.t.sf(t, j - 1)
        half = stats.t.ppf(0.975, j - 1) * sd * np.sqrt(factor)
        out[label] = {a: int((p < a).sum()) for a in (0.05, 0.001)} | {"cover": int((np.abs(v.mean(1)) <= half).sum())}
    wins = (d > 0).reshape(draws, -1).sum(1)
    idx = pd.MultiIndex.from_product([range(folds), range(seeds)])
    cover = {
        k: recipe_test(pd.Series([1.0] * k + [-1.0] * (folds * seeds - k), index=idx)).p_better_ci for k in set(wins)
    }
    out["p_better_cover"] = int(sum(cover[k][0] <= 0.5 <= cover[k][1] for k in wins))
    for i in range(20):  # the vectorised formula is recipe_test's
        got = recipe_test(pd.Series(d[i].ravel(), index=idx), tt)
        assert got.p == pytest.approx(stats.t.sf(v[i].mean() / (sd[i] * np.sqrt(1 / j + (tt or 0.0))), j - 1))
    return out


@pytest.mark.parametrize("name", list(RECIPE))
def test_the_recipe_column_is_calibrated(name: str) -> None:
    r = recipe_rates(name)
    n, c = r["draws"], r["corrected"]
    for a in (0.05, 0.001):
        assert stats.binomtest(c[a], n, a, alternative="greater").pvalue > 1e-3, (a, c[a] / n)
    assert stats.binomtest(c["cover"], n, 0.95, alternative="less").pvalue > 1e-3, c["cover"] / n
    assert stats.binomtest(r["p_better_cover"], n, 0.95, alternative="less").pvalue > 1e-3
    if RECIPE[name][0] == 1:  # one fold: the plain t-test is exact
        assert stats.binomtest(c[0.05], n, 0.05).pvalue > 1e-3
    else:  # folds sharing training pieces: without the correction the t-test over-rejects
        assert stats.binomtest(r["plain"][0.05], n, 0.05, alternative="greater").pvalue < 1e-3


if __name__ == "__main__":
    for name in SCENARIOS:
        r = simulate(name)
        n = r["draws"]
        print(
            f"{name}: {r['units']} {r['kind']}s ({r['dropped']} dropped), {n} null studies; "
            f"rejections at .001: {r['rejections'][0.001] / n:.4f} (exact size {r['size'][0.001]:.4f}), "
            f"at .05: {r['rejections'][0.05] / n:.4f} (size {r['size'][0.05]:.4f}); "
            + (
                f"coverage mean {r['cover_mean'] / n:.3f}, median {r['cover_median'] / n:.3f}; "
                if r["interval"]
                else "no interval; "
            )
            + f"paper's per-excerpt test at .001: {r['paper_rate']:.3f}"
        )
    RAW = True
    for name in DRIFT:
        for tau in TAUS if DRIFT[name][0] < 5 else TAUS[2:3]:
            r = drift_rates(name, tau)
            n = r["draws"]
            print(
                f"drift {tau:g} s, {name}: median {r['units']:g} {r['kind']} units, {n} null studies; rejections "
                f"at .05: {r['rej'][0.05] / n:.4f}, at .001: {r['rej'][0.001] / n:.4f}; interval given "
                f"{r['given'] / n:.3f}, given and missing 0: {r['missed'] / n:.4f}"
                + (f" (coverage when given {1 - r['missed'] / r['given']:.3f})" if r["given"] else "")
                + f"; paper's per-excerpt test at .001: {r['paper_rate']:.3f}"
                + "".join(f"; {k} blocks at .05 / .001: {v[0.05]:.4f} / {v[0.001]:.4f}" for k, v in r["alt"].items())
            )
    for name in RECIPE:
        r = recipe_rates(name)
        n, c, pl = r["draws"], r["corrected"], r["plain"]
        print(
            f"recipe, {name}: {n} null studies; rejections at .05: {c[0.05] / n:.4f}, at .001: "
            f"{c[0.001] / n:.4f}; coverage {c['cover'] / n:.3f}; p_better coverage {r['p_better_cover'] / n:.3f}; "
            f"uncorrected t at .05: {pl[0.05] / n:.4f}, at .001: {pl[0.001] / n:.4f}, coverage {pl['cover'] / n:.3f}"
        )
