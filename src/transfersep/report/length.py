"""Figure 4 and its table: transfer against pretraining length (the grid's ``pretrain_steps`` axis).

For each downstream set and pretrained model, at each pretraining checkpoint fine-tunes and probes
started from (``run.kept``: ``kept/step-<n>.ckpt``, or ``final.ckpt`` at ``end``): the SI-SDR of the
fine-tuned whole and mask models, of the zero-shot probe and of the mixture as the estimate (the
floor), and of the one from-scratch baseline scored at two of its own iterations:

- **equal downstream iterations** (the fine-tune's budget): is the pretrained start better than
  random weights? (``S``: whole-model > baseline at the fine-tune's budget);
- **equal total iterations** (kept pretraining step + the fine-tune's budget), the paper's rule
  (``H1``: whole-model > baseline at that total).

Each comparison carries the paper's test (one-sided Wilcoxon over excerpts), the per-unit one and,
when the grid points were trained several times, the recipe test over replicates
(``report.comparisons.compare``). With replicates, values are means over replicates and the figure
draws their 95 % t-intervals (``report.replicates``). The baseline's scores at kept steps are
``baseline/<set>/kept/step-<n>/``; its final score is its total budget.

This module is the figure's data (its runs come from the one scan, ``report.scan``, by their
length key): ``length_table`` is ``table4_length.csv``; ``figures.figure4`` draws it and
``text.length_section`` writes its part of ``report.md``. A run left out as stale keeps its row,
empty and noted "absent: ...", so the figure and the table show the hole instead of hiding it.
"""

from __future__ import annotations

import pandas as pd

from transfersep.report.comparisons import compare
from transfersep.report.replicates import replicate_summary
from transfersep.report.results import Key, Run, axis
from transfersep.report.scan import Scan
from transfersep.report.stats import ALPHA
from transfersep.run.point import GridPoint

H1 = "H1 pretrained > scratch at equal total iterations"
# each test's columns in table4_length.csv (from ``comparisons.compare``'s row, prefixed h1_ / start_)
TEST_FIELDS = {
    "diff_db": "diff_db",
    "p": "p",
    "sig": "significant",
    "units": "units",
    "n_units": "n_units",
    "unit_ci_low": "mean_ci_low",
    "unit_ci_high": "mean_ci_high",
    "p_units": "p_units",
    "min_p_units": "min_p_units",
    "sig_units": "significant_independent",
    "recipe_n": "recipe_n",
    "recipe_diff_db": "recipe_mean_diff_db",
    "recipe_ci_low": "recipe_ci_low",
    "recipe_ci_high": "recipe_ci_high",
    "p_recipe": "p_recipe",
    "sig_recipe": "significant_recipe",
    "p_better": "p_better",
}
START = "S pretrained start > random weights at equal downstream iterations"
COLUMNS = [
    "downstream",
    "pretrain",
    "augment",
    "pretrain_steps",
    "pretrain_iterations",
    "finetune_iterations",
    "whole_db",
    "mask_db",
    "zeroshot_db",
    "floor_db",
    "baseline_equal_downstream_db",
    "baseline_equal_total_db",
    *(f"{c}_{b}" for c in ("whole", "baseline_equal_total") for b in ("replicates", "ci_low", "ci_high")),
    *(f"{t}_{c}" for t in ("h1", "start") for c in TEST_FIELDS),
    "note",
]


def _parent_steps(run: Run | None) -> int | None:
    steps = (((run.result.get("extra") or {}).get("parent") or {}).get("steps")) if run else None
    return None if steps is None else int(steps)


def _mean(run: Run | None) -> float | None:
    """The mean over a grid point's replicates (the run's own mean when it was trained once)."""
    return replicate_summary(run)["mean"] if run else None


def _spread(prefix: str, run: Run | None) -> dict:
    s = replicate_summary(run) if run else {"n": None, "low": None, "high": None}
    return {f"{prefix}_replicates": s["n"], f"{prefix}_ci_low": s["low"], f"{prefix}_ci_high": s["high"]}


def _test(prefix: str, row: dict) -> dict:
    out = {f"{prefix}_{k}": row.get(v) for k, v in TEST_FIELDS.items()}
    for k in ("sig", "sig_units", "sig_recipe"):
        out[f"{prefix}_{k}"] = bool(out[f"{prefix}_{k}"])
    return out


def length_rows(
    runs: dict[Key, Run], downs: list[str], alpha: float = ALPHA, stale: dict[Key, Run] | None = None
) -> list[dict]:
    """One row per (downstream set, pretrained model, pretrain_steps value) that has any run; a
    run of ``stale`` (by length key) keeps its row, its values empty and its note "absent: ..."."""
    stale = stale or {}
    values = list(axis("pretrain_steps"))
    present = {k.pretrain_steps for k in (*runs, *stale) if k.stage != "baseline"}
    values += sorted(present - set(values))
    pairs = list(dict.fromkeys((k.pretraining, k.augment) for k in (*runs, *stale) if k.stage != "baseline"))
    rows = []
    for d in downs:
        for c, a in pairs:
            for v in values:
                wk, mk, zk = (
                    GridPoint(c, a, "whole", d, v),
                    GridPoint(c, a, "mask", d, v),
                    GridPoint.zeroshot(c, a, d, v),
                )
                w, m, z = runs.get(wk), runs.get(mk), runs.get(zk)
                gone = [stale[k] for k in (wk, mk, zk) if k in stale]
                if not (w or m or z or gone):
                    continue
                pre = next((s for s in map(_parent_steps, (w, m, z, *gone)) if s is not None), None)
                ft = next(
                    (int(r.result["extra"]["steps"]) for r in (w, m) if r and "steps" in r.result.get("extra", {})),
                    None,
                )
                row = {c_: None for c_ in COLUMNS}
                row.update(
                    downstream=d,
                    pretrain=c,
                    augment=a,
                    pretrain_steps=v,
                    pretrain_iterations=pre,
                    finetune_iterations=ft,
                    whole_db=_mean(w),
                    mask_db=_mean(m),
                    zeroshot_db=_mean(z),
                    floor_db=z.floor if z else None,
                    **_spread("whole", w),
                )
                notes = [f"absent: {r.rel} left out, stale (see Problems)" for r in gone]
                if ft is not None:
                    down_k = GridPoint.baseline(d, kept_step=ft)
                    row["baseline_equal_downstream_db"] = _mean(runs.get(down_k))
                    row.update(_test("start", compare(START, d, wk, down_k, runs, alpha)))
                    if pre is not None:
                        tot_k = GridPoint.baseline(d, kept_step=pre + ft)
                        row["baseline_equal_total_db"] = _mean(runs.get(tot_k))
                        row.update(_spread("baseline_equal_total", runs.get(tot_k)))
                        row.update(_test("h1", compare(H1, d, wk, tot_k, runs, alpha)))
                        if tot_k not in runs:
                            notes.append(f"no baseline score at iteration {pre + ft}")
                    if down_k not in runs:
                        notes.append(f"no baseline score at iteration {ft}")
                row["note"] = "; ".join(notes) or None
                rows.append(row)
    return rows


def length_table(scan: Scan, downs: list[str], alpha: float = ALPHA) -> pd.DataFrame | None:
    """``table4_length.csv``: the rows of ``length_rows`` with numeric columns, or None when the study
    ran no fine-tune or probe of the axis beside its end (no Figure 4)."""
    rows = length_rows(scan.length, downs, alpha, scan.stale)
    if not rows or {r["pretrain_steps"] for r in rows} == {"end"}:
        return None
    table = pd.DataFrame(rows, columns=COLUMNS)
    numeric = [
        c
        for c in COLUMNS
        if c.endswith(("_db", "_iterations", "_p", "_p_units", "_n_units", "_low", "_high", "_n", "_replicates"))
        or c.endswith(("_min_p_units", "_p_recipe", "_p_better"))
    ]
    table[numeric] = table[numeric].apply(pd.to_numeric, errors="coerce")  # a column of None stays numeric
    return table
