"""The report's tables as files: Table 2 (csv, image), the summary of every run, and the one way a
table is written as csv."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from transfersep.files import atomic_write_text
from transfersep.report.comparisons import find
from transfersep.report.draw import note_figure, table_image
from transfersep.report.numbers import num, ok
from transfersep.report.results import Key, Run, axis, describe_key, key_name, label
from transfersep.run.point import GridPoint


def table2(rows: list[dict], downs: list[str], pairs: list[tuple[str, str]]) -> pd.DataFrame:
    """Long form: one row per (augment, corpus) pair of the study x downstream, mask minus whole."""
    out = []
    corpora, augments = axis("pretrain"), axis("augment")
    for c, a in sorted(
        pairs,
        key=lambda ca: (
            augments.index(ca[1]) if ca[1] in augments else len(augments),
            corpora.index(ca[0]) if ca[0] in corpora else len(corpora),
            ca,
        ),
    ):
        for d in downs:
            r = find(rows, "R2", d, key_name(GridPoint(c, a, "mask", d))) or {}
            out.append(
                {
                    "augment": a,
                    "pretrain": c,
                    "downstream": d,
                    "mask_sisdr_db": r.get("x_sisdr_db"),
                    "whole_sisdr_db": r.get("y_sisdr_db"),
                    "mask_minus_whole_db": r.get("diff_db"),
                    "statistic": r.get("statistic"),
                    "p": r.get("p"),
                    "n": r.get("n"),
                    "significant_increase": bool(r.get("significant")),
                    "median_ci_low": r.get("median_ci_low"),
                    "median_ci_high": r.get("median_ci_high"),
                    "n_units": r.get("n_units"),
                    "p_units": r.get("p_units"),
                    "significant_independent": bool(r.get("significant_independent")),
                    "paper_only": bool(r.get("paper_only")),
                    "note": r.get("note", "absent"),
                }
            )
    return pd.DataFrame(
        out,
        columns=[
            "augment",
            "pretrain",
            "downstream",
            "mask_sisdr_db",
            "whole_sisdr_db",
            "mask_minus_whole_db",
            "statistic",
            "p",
            "n",
            "significant_increase",
            "median_ci_low",
            "median_ci_high",
            "n_units",
            "p_units",
            "significant_independent",
            "paper_only",
            "note",
        ],
    )


def summary(runs: dict[Key, Run]) -> pd.DataFrame:
    rows = []
    every = [(key, rep) for key, run in runs.items() for rep in (run.replicates or {run.replicate: run}).values()]
    for key, run in sorted(every, key=lambda kv: kv[1].rel):
        gp, res = run.result["grid_point"], run.result
        overall = res.get("overall") or {}
        fold, seed = run.replicate
        row = {
            "run": run.rel,
            "model": describe_key(key),
            "stage": key.stage,
            "pretrain": gp.get("pretrain"),
            "augment": gp.get("augment"),
            "finetune": gp.get("finetune"),
            "downstream": gp.get("downstream"),
            "fold": fold,
            "seed": seed,
            "n_excerpts": res.get("n_excerpts"),
            "n_excluded": res.get("n_excluded"),
            "sisdr_mean": overall.get("mean"),
            "sisdr_median": overall.get("median"),
            "sisdr_std": overall.get("std"),
            "sisdr_n": overall.get("n"),
            "curve_points": None if run.curve is None else len(run.curve),
        }
        for s, st in (res.get("per_source") or {}).items():
            row[f"sisdr_{s}"] = (st or {}).get("mean")
        for k, v in (res.get("extra") or {}).items():
            if isinstance(v, (str, int, float, bool)) or v is None:
                row[f"extra_{k}"] = v
        rows.append(row)
    return pd.DataFrame(rows)


def write_csv(df: pd.DataFrame, path: Path) -> Path:
    return atomic_write_text(path, df.to_csv(index=False, lineterminator="\n"))


def table2_png(path: Path, t2: pd.DataFrame, downs: list[str], alpha: float) -> Path:
    """Table 2 as an image (``table2``'s frame): significant increases bold and shaded."""
    rows = list(dict.fromkeys(zip(t2.augment, t2.pretrain)))
    if not rows or not downs:
        return note_figure(
            path, "Table 2: mask-model minus whole-model", "absent: this study has no pair of mask- and whole-models"
        )
    cells = np.full((len(rows), len(downs)), "absent", dtype=object)
    bold = np.zeros((len(rows), len(downs)), dtype=bool)
    for i, (a, c) in enumerate(rows):
        for j, d in enumerate(downs):
            r = t2[(t2.augment == a) & (t2.pretrain == c) & (t2.downstream == d)].iloc[0]
            v = r["mask_minus_whole_db"]
            if ok(v):
                cells[i, j] = num(v, "{:+.2f}") + (" †" if r["paper_only"] else "")
                bold[i, j] = bool(r["significant_increase"])
    return table_image(
        path,
        "Table 2: SI-SDR of mask-model minus whole-model (dB)",
        [f"{label('augment', a)} / {label('pretrain', c)}" for a, c in rows],
        [label("downstream", d) for d in downs],
        cells,
        bold,
        f"bold, shaded = significant increase (one-sided Wilcoxon, p < {alpha:g}); † = only under the paper's "
        "test, not over independent units; absent = no evaluated run",
    )
