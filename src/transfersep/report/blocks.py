"""Independent units of a fixed test list: which excerpts share audio, and how sure a difference is.

A test list of 1000 excerpts of a few pieces is not 1000 independent observations: on a 37-s piece
10-s excerpts overlap almost entirely. This module groups the excerpts into units that share no
track (or, for sets with fewer than ``MIN_TRACKS`` such units, no time block), selects a subset of
pairwise non-overlapping excerpts, and resamples whole units in a block bootstrap.

Input: the excerpt origins of a ``scores.csv`` (``origins``), one row per (excerpt, source) with
``track`` (track / piece name), ``start_s`` (start in the track, seconds) and ``seconds`` (the
span read from the track). Coherent excerpts have one (track, start) for all sources; incoherent
ones one per source, so an excerpt may touch several tracks.

- **Units by track**: excerpts that share any track are in one unit (connected components of the
  excerpt-track graph, ``scipy.sparse.csgraph``). Used when there are at least ``MIN_TRACKS``
  units.
- **Units by time block** otherwise: on each track the starts are cut into blocks greedily (a
  block holds every excerpt starting less than one excerpt length after the block's first start),
  and excerpts that share a (track, block) are one unit. The first excerpts of the blocks of a
  track do not overlap each other; excerpts near a block's end may still overlap the next block's,
  so time blocks are nearly, not exactly, independent.
- **Non-overlapping selection**: excerpts in order of their earliest start (then id), kept when no
  span of theirs overlaps a kept span on the same track (for coherent excerpts this is the greedy
  interval schedule: one excerpt per time block, the largest possible such set).

The block bootstrap is ``scipy.stats.bootstrap`` over the unit indices (a unit is resampled whole,
with all its excerpts); the statistic pools the paired differences of the drawn units. The
percentile method is used: BCa's jackknife is unstable with the handful of units a small test set
has, and the percentile interval of two units is exactly the range resampling them can give.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse, stats
from scipy.sparse.csgraph import connected_components

MIN_TRACKS = 5
ORIGIN_COLUMNS = ["track", "start_s", "seconds"]


@dataclass
class Units:
    unit: pd.Series  # excerpt id -> unit number (0 .. n_units - 1)
    kind: str  # "track" or "time block"
    n_units: int
    nonoverlap: list  # excerpt ids of pairwise non-overlapping excerpts


def origins_of(scores: pd.DataFrame) -> pd.DataFrame | None:
    """The origin rows (excerpt, source, track, start_s, seconds) of a scores table, or None when
    its origin columns are not all filled in (a test set that does not say where its excerpts come
    from)."""
    df = scores[["excerpt", "source", *ORIGIN_COLUMNS]].copy()
    if df[ORIGIN_COLUMNS].isna().any().any():
        return None
    df["track"] = df["track"].astype(str)
    df["start_s"] = df["start_s"].astype(np.float64)
    df["seconds"] = df["seconds"].astype(np.float64)
    return df.reset_index(drop=True)


def _components(excerpts: np.ndarray, nodes: pd.Series) -> tuple[np.ndarray, int]:
    """Connected components of the bipartite graph excerpt -- node; returns (label per excerpt
    of ``excerpts``, count)."""
    ex_codes = pd.Index(excerpts).get_indexer(nodes.index)
    node_codes, node_names = pd.factorize(nodes.to_numpy())
    n_ex, n_nodes = len(excerpts), len(node_names)
    g = sparse.coo_matrix((np.ones(len(ex_codes)), (ex_codes, n_ex + node_codes)), shape=(n_ex + n_nodes,) * 2)
    _, labels = connected_components(g, directed=False)
    ex_labels = labels[:n_ex]
    dense, _ = pd.factorize(ex_labels)  # renumber 0..k-1 in excerpt order
    return dense, int(dense.max()) + 1 if n_ex else 0


def _time_blocks(o: pd.DataFrame) -> pd.Series:
    """Block number of each origin row within its track (see the module docstring)."""
    block = pd.Series(0, index=o.index, dtype=np.int64)
    for _, rows in o.groupby("track", sort=False):
        rows = rows.sort_values(["start_s", "excerpt"])
        b, head_end = -1, -np.inf
        for idx, start, sec in zip(rows.index, rows["start_s"], rows["seconds"]):
            if start >= head_end:
                b, head_end = b + 1, start + sec
            block[idx] = b
    return block


def units(origins: pd.DataFrame, min_tracks: int = MIN_TRACKS) -> Units:
    """The independent units of the excerpts in ``origins`` (see the module docstring)."""
    o = origins.reset_index(drop=True)
    excerpts = np.array(sorted(o["excerpt"].unique()))
    nodes = pd.Series(o["track"].to_numpy(), index=o["excerpt"].to_numpy())
    labels, n = _components(excerpts, nodes)
    kind = "track"
    if n < min_tracks:
        blk = _time_blocks(o)
        nodes = pd.Series((o["track"] + "\x00" + blk.astype(str)).to_numpy(), index=o["excerpt"].to_numpy())
        labels, n = _components(excerpts, nodes)
        kind = "time block"
    return Units(pd.Series(labels, index=excerpts, name="unit"), kind, n, nonoverlapping(o))


def nonoverlapping(origins: pd.DataFrame) -> list:
    """Excerpt ids of a set of excerpts no two of which share any audio of any track."""
    o = origins.assign(end=origins["start_s"] + origins["seconds"])
    order = o.groupby("excerpt")["start_s"].min().reset_index().sort_values(["start_s", "excerpt"])
    spans = {e: list(zip(g["track"], g["start_s"], g["end"])) for e, g in o.groupby("excerpt")}
    kept: dict[str, list[tuple[float, float]]] = {}
    out = []
    for e in order["excerpt"]:
        mine = spans[e]
        if any(s < ke and ks < end for t, s, end in mine for ks, ke in kept.get(t, ())):
            continue
        for t, s, end in mine:
            kept.setdefault(t, []).append((s, end))
        out.append(e)
    return sorted(out)


def block_bootstrap(
    diff: pd.Series,
    unit: pd.Series,
    statistic: str = "median",
    confidence: float = 0.95,
    n_resamples: int = 9999,
    seed: int = 0,
) -> tuple[float, float] | None:
    """Percentile interval of the ``statistic`` ("median" or "mean") of the paired differences
    ``diff`` (excerpt id -> dB), resampling whole units (``unit``: excerpt id -> unit). None when
    fewer than two units hold a difference."""
    u = unit.reindex(diff.index)
    if u.isna().any():
        raise ValueError(f"{int(u.isna().sum())} excerpt(s) have no unit: the origins do not cover the scores")
    codes, _ = pd.factorize(u.to_numpy())
    n_units = int(codes.max()) + 1 if len(codes) else 0
    if n_units < 2:
        return None
    values = diff.to_numpy(np.float64)
    order = np.argsort(values, kind="stable")
    v_sorted, u_sorted = values[order], codes[order]
    sums = np.bincount(codes, weights=values, minlength=n_units)
    counts = np.bincount(codes, minlength=n_units).astype(np.float64)

    def draws(idx: np.ndarray) -> np.ndarray:
        """[B, n_units] unit indices -> [B, n_units] how often each unit was drawn."""
        flat = idx.reshape(-1, idx.shape[-1]).astype(np.int64)
        rows = np.repeat(np.arange(flat.shape[0]), flat.shape[1])
        c = np.zeros((flat.shape[0], n_units))
        np.add.at(c, (rows, flat.ravel()), 1.0)
        return c

    if statistic == "mean":

        def stat(idx, axis=-1):
            c = draws(np.asarray(idx))
            return ((c @ sums) / (c @ counts)).reshape(np.shape(idx)[:-1])
    elif statistic == "median":

        def stat(idx, axis=-1):
            # the pooled median of the drawn units = a weighted median of every excerpt, weighted
            # by how often its unit was drawn (no per-resample concatenation)
            w = draws(np.asarray(idx))[:, u_sorted]  # [B, E] in sorted-value order
            cum = np.cumsum(w, axis=1)
            n = cum[:, -1:]
            lo = np.argmax(cum >= np.floor((n + 1) / 2), axis=1)
            hi = np.argmax(cum >= np.floor(n / 2) + 1, axis=1)
            return ((v_sorted[lo] + v_sorted[hi]) / 2).reshape(np.shape(idx)[:-1])
    else:
        raise ValueError(f"statistic must be 'median' or 'mean', not {statistic!r}")
    res = stats.bootstrap(
        (np.arange(n_units),),
        stat,
        vectorized=True,
        n_resamples=n_resamples,
        batch=500,
        confidence_level=confidence,
        method="percentile",
        random_state=np.random.default_rng(seed),
    )
    lo, hi = res.confidence_interval
    return float(lo), float(hi)
