"""Independent units of a fixed test list: which excerpts share audio, and which do not.

A test list of 1000 excerpts of a few pieces is not 1000 independent observations: on a 37-s piece
10-s excerpts overlap almost entirely. This module groups the excerpts into units that share no
audio with one another — whole tracks, or, for sets with fewer than ``MIN_TRACKS`` such units,
time blocks of a track — so that a paired test can count units instead of excerpts
(``transfersep.report.stats.independent_paired``).

Input: the excerpt origins of a ``scores.csv`` (``origins``), one row per (excerpt, source) with
``track`` (track / piece name), ``start_s`` (start in the track, seconds) and ``seconds`` (the
span read from the track). Coherent excerpts have one (track, start) for all sources; incoherent
ones one per source, so an excerpt may touch several tracks.

- **Units by track**: excerpts that share any track are in one unit (connected components of the
  excerpt-track graph, ``scipy.sparse.csgraph``). Used when there are at least ``MIN_TRACKS``
  units. Units share no track, so they share no audio.
- **Units by time block** otherwise: on each track the excerpts chosen greedily in order of start
  (each one starting no earlier than the end of the previous) cut the track at their starts; block
  ``b`` is the stretch from the ``b``-th cut to the next. An excerpt belongs to a block when every
  span of it lies wholly inside one block of its track; an excerpt that **straddles** a cut shares
  audio with two blocks and is dropped (listed in ``Units.dropped``, never reassigned). Excerpts
  whose spans lie in blocks of several tracks join those blocks into one unit. No two units then
  share a sample of any track: the units are independent in their audio. (Cutting at the greedy
  starts gives the largest number of blocks that each hold a whole excerpt.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse.csgraph import connected_components

MIN_TRACKS = 5
ORIGIN_COLUMNS = ["track", "start_s", "seconds"]


@dataclass
class Units:
    unit: pd.Series  # excerpt id -> unit number (0 .. n_units - 1); dropped excerpts are absent
    kind: str  # "track" or "time block"
    n_units: int
    dropped: list = field(default_factory=list)  # excerpt ids that straddle two time blocks


def origins_of(scores: pd.DataFrame) -> pd.DataFrame | None:
    """The origin rows (excerpt, source, track, start_s, seconds) of a scores table, or None when
    none is filled in (a test set that does not say where its excerpts come from). An excerpt with
    any row missing its origin (an empty cell; "NA" or "None" is a track name when read by
    ``scores.read_scores``) is left out, so that its excerpts are counted as missing, not guessed."""
    df = scores[["excerpt", "source", *ORIGIN_COLUMNS]].copy()
    track = df["track"].astype(str).where(df["track"].notna(), "")
    missing = (track.str.strip() == "") | df[["start_s", "seconds"]].isna().any(axis=1)
    if missing.all():
        return None
    df["track"] = track
    df = df[~df["excerpt"].isin(set(df.loc[missing, "excerpt"]))]
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
    """Block number of each origin row within its track, or -1 where the span straddles a cut."""
    block = pd.Series(-1, index=o.index, dtype=np.int64)
    for _, rows in o.groupby("track", sort=False):
        starts = rows["start_s"].to_numpy()
        ends = starts + rows["seconds"].to_numpy()
        cuts, free = [], -np.inf
        for s, e in sorted(zip(starts, ends)):
            if s >= free:  # the greedy non-overlapping excerpts: each one starts a block
                cuts.append(s)
                free = e
        cuts_a = np.asarray(cuts)
        b = np.searchsorted(cuts_a, starts, side="right") - 1
        nxt = np.append(cuts_a[1:], np.inf)[b]
        block[rows.index] = np.where(ends <= nxt, b, -1)
    return block


def units(origins: pd.DataFrame, min_tracks: int = MIN_TRACKS) -> Units:
    """The independent units of the excerpts in ``origins`` (see the module docstring)."""
    o = origins.reset_index(drop=True)
    excerpts = np.array(sorted(o["excerpt"].unique()))
    nodes = pd.Series(o["track"].to_numpy(), index=o["excerpt"].to_numpy())
    labels, n = _components(excerpts, nodes)
    if n >= min_tracks:
        return Units(pd.Series(labels, index=excerpts, name="unit"), "track", n)
    blk = _time_blocks(o)
    straddle = set(o.loc[blk < 0, "excerpt"])
    dropped = [e for e in excerpts if e in straddle]
    kept = o[~o["excerpt"].isin(straddle)]
    kept_ex = np.array([e for e in excerpts if e not in straddle])
    nodes = pd.Series(
        (kept["track"] + "\x00" + blk[kept.index].astype(str)).to_numpy(), index=kept["excerpt"].to_numpy()
    )
    labels, n = _components(kept_ex, nodes)
    return Units(pd.Series(labels, index=kept_ex, name="unit"), "time block", n, dropped)


def unit_means(values: pd.Series, unit: pd.Series) -> np.ndarray:
    """The mean of ``values`` (excerpt id -> dB; NaN excerpts ignored) over the excerpts of each
    unit (``unit``: excerpt id -> unit), one per unit that holds a value; excerpts without a unit
    (dropped straddlers) are left out."""
    v = values.dropna()
    u = unit.reindex(v.index)
    keep = u.notna().to_numpy()
    return v[keep].groupby(u[keep].astype(np.int64).to_numpy()).mean().to_numpy(np.float64)
