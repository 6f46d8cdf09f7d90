"""A run's scores.csv as the report reads it: the table, checked, and its per-excerpt means."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from transfersep.evaluation.sisdr import excerpt_means


def read_scores(path: str | Path) -> pd.DataFrame:
    """Read a scores.csv (``evaluate.SCORES_COLUMNS``). ``track`` is read as text ("NA" and "None"
    are track names; an empty cell is ""); an infinite SI-SDR is refused."""
    from transfersep.evaluation.evaluate import SCORES_COLUMNS

    df = pd.read_csv(path)
    missing = [c for c in SCORES_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(
            f"{path}: missing column(s) {missing}; a scores.csv has {','.join(SCORES_COLUMNS)} (evaluate the run again)"
        )
    df["track"] = pd.read_csv(path, usecols=["track"], dtype=str, keep_default_na=False)["track"].to_numpy()
    db = pd.to_numeric(df["sisdr_db"], errors="coerce")
    bad = np.isinf(db.to_numpy(np.float64))
    if bad.any():
        r = df[bad].iloc[0]
        raise ValueError(
            f"{path}: excerpt {r['excerpt']} source {r['source']} has an infinite SI-SDR ({db[bad].iloc[0]}) "
            f"in {int(bad.sum())} row(s); a finite score is needed to compare models: re-evaluate the run"
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
