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

Run as a script (``python tests/report/test_calibration.py``) it prints the measured rates, the
numbers in the README's statistics section.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from transfersep.report.blocks import units
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
