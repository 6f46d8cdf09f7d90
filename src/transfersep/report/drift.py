"""Time blocks that survive drift: consecutive blocks merged into super-blocks sized from the
correlation the scores themselves show along time.

The time blocks of ``transfersep.report.blocks`` share no audio, but the paired difference of two
models drifts along a piece: a passage hard for one model stays hard for seconds, so adjacent
~1-s blocks are correlated and a signed-rank test over them over-rejects (a 30.8-s piece, 100
one-second excerpts, 26 blocks, drift with a correlation time of 1 / 2 / 5 s: 12 / 19 / 30 % of
null studies rejected at .05, 1.2 / 3.9 / 13 % at .001). This module measures that correlation
and merges blocks until the merged units are nearly independent ("batch means": a t- or
signed-rank test over a few long batches keeps its level where an autocorrelation-consistent
variance over many short ones does not — Kiefer & Vogelsang 2005; Ibragimov & Müller 2010).

Measurement: the raw block means, ordered by time within each track and centred on the mean of
all blocks (a level difference between takes is not told apart from a slow drift: a drift of 5 s
on an 8-s take *is* a take offset), give the pooled lag-1 autocorrelation r. It is corrected for
the bias of a short series with its mean estimated (Kendall 1954: E r ≈ ρ − (1 + 3ρ)/n, so
ρ̂ = (n·r + 1)/(n − 3)), and the size is taken from its one-standard-error upper bound
ρ⁺ = ρ̂ + √((1 − ρ̂²)/pairs): a short piece cannot show a long correlation reliably, and an
underestimate is what breaks the level. With Δ the median spacing of consecutive blocks the
correlation time is τ = −Δ / ln ρ, and each super-block holds ``ceil(SPAN · τ⁺ / Δ)`` raw blocks
(SPAN = 3 correlation times), consecutive blocks of one track split as evenly as their count
allows. Below ``MIN_RAW_BLOCKS`` raw blocks nothing can be measured and each track is one unit.

Chosen by simulation (``tests/report/test_calibration.py``): Diebold & Mariano's (1995) test with
a Newey–West (1987) variance and the Harvey, Leybourne & Newbold (1997) small-sample correction,
bandwidth from the same measured correlation, rejected 0.7 / 1.7 / 5.4 % of null studies at
α = .001 on the 30.8-s piece at τ = 1 / 2 / 5 s and 0.9 / 1.6 / 3.6 % on two 8-s takes; the
super-blocks stay at or below α (≤ 0.1 %).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

SPAN = 3.0  # super-block length, in measured correlation times
MIN_RAW_BLOCKS = 6  # fewer raw blocks: the correlation cannot be measured
MAX_RHO = 0.98


@dataclass
class SuperBlocks:
    unit: pd.Series  # excerpt id -> super-block number (0 .. n_units - 1)
    n_units: int
    n_raw: int  # time blocks before merging
    corr_s: float | None  # measured correlation time of the paired difference, s (point estimate)
    corr_s_bound: float | None  # the upper bound the super-blocks are sized from, s
    block_s: float | None  # mean time span of a super-block, s
    measured: bool  # False: too few raw blocks, one unit per track


def block_table(d: pd.Series, unit: pd.Series, origins: pd.DataFrame) -> pd.DataFrame:
    """One row per raw unit holding a difference: ``track`` (of its first excerpt row), ``mid``
    (mean centre time of its excerpts, s), ``mean`` (mean difference) and ``n`` (excerpts)."""
    d = d.dropna()
    u = unit.reindex(d.index).dropna().astype(np.int64)
    o = origins[origins["excerpt"].isin(u.index)]
    per_ex = (
        o.assign(mid=o["start_s"] + o["seconds"] / 2)
        .groupby("excerpt")
        .agg(track=("track", "first"), mid=("mid", "mean"))
    )
    df = per_ex.reindex(u.index).assign(unit=u.to_numpy(), d=d[u.index].to_numpy())
    t = df.groupby("unit").agg(track=("track", "first"), mid=("mid", "mean"), mean=("d", "mean"), n=("d", "size"))
    return t.sort_values(["track", "mid"], kind="stable")


def lag_one_arrays(means: np.ndarray, same: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ρ̂, ρ⁺) of block means ``means`` (..., m) in track-then-time order; ``same`` (m − 1,) marks
    the consecutive pairs within one track. Vectorised over leading axes (the calibration's draws)."""
    x = means - means.mean(-1, keepdims=True)
    den = (x * x).sum(-1)
    r = np.where(den > 0, (x[..., 1:] * x[..., :-1])[..., same].sum(-1) / np.where(den > 0, den, 1.0), 0.0)
    n = means.shape[-1]
    rho = np.clip((n * r + 1.0) / (n - 3.0), -1.0, MAX_RHO)  # Kendall (1954)
    pairs = max(int(same.sum()), 1)
    upper = np.clip(rho + np.sqrt(np.clip(1.0 - rho**2, 0.0, None) / pairs), 0.0, MAX_RHO)
    return rho, upper


def lag_one(blocks: pd.DataFrame) -> tuple[float, float, float, int]:
    """(ρ̂ bias-corrected, its upper bound ρ⁺, spacing Δ in s, lag-1 pairs) of ``block_table``."""
    tr = blocks["track"].to_numpy()
    same = tr[1:] == tr[:-1]
    rho, upper = lag_one_arrays(blocks["mean"].to_numpy(np.float64), same)
    gaps = np.diff(blocks["mid"].to_numpy())[same]
    return float(rho), float(upper), float(np.median(gaps)) if gaps.size else 0.0, int(same.sum())


def group_size(upper: np.ndarray | float, spacing: float) -> np.ndarray:
    """Raw blocks per super-block: ``ceil(SPAN · τ⁺ / Δ)``, at least 1."""
    u = np.asarray(upper, dtype=np.float64)
    tau = np.where(u > 0, -spacing / np.log(np.where(u > 0, u, 0.5)), 0.0)
    return np.maximum(1, np.ceil(SPAN * tau / spacing - 1e-9)).astype(np.int64)


def assign(per_track: list[int], size: int) -> np.ndarray:
    """Super-block of each raw block (track-then-time order) for tracks of ``per_track`` blocks:
    ``m // size`` super-blocks per track (at least one), consecutive blocks split evenly."""
    out, first = [], 0
    for m in per_track:
        k = max(1, m // size)
        out.append(first + (np.arange(m) * k) // m)
        first += k
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def corr_time(rho: float, spacing: float) -> float:
    """The exponential correlation time whose lag-``spacing`` correlation is ``rho`` (0 when ≤ 0)."""
    return float(-spacing / np.log(rho)) if rho > 0 and spacing > 0 else 0.0


def super_blocks(d: pd.Series, unit: pd.Series, origins: pd.DataFrame) -> SuperBlocks:
    """Merge the raw time blocks ``unit`` (excerpt -> block) of the paired differences ``d`` into
    super-blocks sized from the measured correlation (module docstring)."""
    t = block_table(d, unit, origins)
    n_raw = len(t)
    corr = bound = block_s = None
    size = n_raw + 1  # too few blocks to measure: one unit per track
    if n_raw >= MIN_RAW_BLOCKS:
        rho, upper, spacing, pairs = lag_one(t)
        if pairs >= MIN_RAW_BLOCKS - 2 and spacing > 0:
            corr, bound = corr_time(rho, spacing), corr_time(upper, spacing)
            size = int(group_size(upper, spacing))
    per_track = t.groupby("track", sort=False).size().tolist()
    new = pd.Series(assign(per_track, size), index=t.index)
    n_units = int(new.max()) + 1 if n_raw else 0
    if corr is not None:
        block_s = spacing * n_raw / n_units
    mapped = unit.reindex(d.dropna().index).dropna().astype(np.int64).map(new)
    return SuperBlocks(mapped.rename("unit"), n_units, n_raw, corr, bound, block_s, corr is not None)
