"""The report's comparisons: each one the paper's test and the independent statistics beside it.

Families (x better than y is tested, one-sided):

- ``H1 pretrained > scratch``: whole-model fine-tuned from pretraining without augmentation vs the
  from-scratch baseline (Figure 1);
- ``H2 augmented > no augmentation``: whole-models, each augmentation vs none, same corpus
  (Figure 2);
- ``R2 mask > whole`` (Table 2);
- ``Z fine-tuned > zero-shot``: the whole-model vs the zero-shot probe of its pretrained model on
  the same downstream set (only in studies with zero-shot runs);
- ``S self-supervised > supervised``: the whole-model fine-tuned from a self-supervised pretraining
  (no augmentation) vs the one fine-tuned from the supervised pretraining on the same audio
  (``results.supervised_twin``: slakh_mixit and slakh_boot against slakh).

Paper's columns: one-sided Wilcoxon over all paired excerpts (``stats.wilcoxon_paired``).
Independent columns (``stats.independent_paired``): the paired differences averaged within each
independent unit (tracks, or time blocks that share no audio), their number, the mean and median
over units with 95 % intervals (from ``stats.MIN_UNITS_INTERVAL`` units on), the exact one-sided
signed-rank p over the units and the smallest p those units can reach. ``paper_only`` flags a
comparison significant under the paper's test but not under the per-unit one. Only comparisons
whose two runs belong to the study's grid are made.

The two columns above are about the two trained models of replicate 0 (seed 0, fold 0). Recipe
columns (``replicates.RECIPE_COLUMNS``): the same comparison over every replicate both grid points
have, one unit per (fold, seed): the mean difference, its interval, the one-sided t-test over units
and the probability that x's recipe outperforms y's (``recipe.recipe_test``).
"""

from __future__ import annotations

from transfersep.report.replicates import RECIPE_COLUMNS, recipe_columns
from transfersep.report.results import Key, Run, axis, key_name, supervised_twin
from transfersep.report.stats import ALPHA, TestSetMismatch, check_same_test_set, independent_paired, wilcoxon_paired
from transfersep.run.point import GridPoint

TEST_COLUMNS = [
    "family",
    "downstream",
    "x",
    "y",
    "x_sisdr_db",
    "y_sisdr_db",
    "diff_db",
    "statistic",
    "p",
    "n",
    "median_diff_db",
    "direction",
    "significant",
    "units",
    "unit_claim",
    "corr_s",
    "n_units",
    "n_dropped",
    "unit_mean_diff_db",
    "mean_ci_low",
    "mean_ci_high",
    "unit_median_diff_db",
    "median_ci_low",
    "median_ci_high",
    "p_units",
    "min_p_units",
    "reaches_alpha",
    "significant_independent",
    "paper_only",
    "note",
    *RECIPE_COLUMNS,
]
FAMILIES = {
    "H1": "H1 pretrained > scratch",
    "H2": "H2 augmented > no augmentation",
    "R2": "R2 mask > whole",
    "Z": "Z fine-tuned > zero-shot",
    "S": "S self-supervised > supervised",
}


def _same_origins(x: Run, y: Run) -> bool:
    cols = ["excerpt", "source", "track", "start_s"]
    a = x.origins[cols].sort_values(cols[:2]).reset_index(drop=True)
    b = y.origins[cols].sort_values(cols[:2]).reset_index(drop=True)
    return a.equals(b)


def compare(family: str, d: str, xk: Key, yk: Key, runs: dict[Key, Run], alpha: float = ALPHA) -> dict:
    """One test row: is run ``xk`` better than run ``yk``? Missing runs/scores give a note, not an error."""
    x, y = runs.get(xk), runs.get(yk)
    row: dict = {c: None for c in TEST_COLUMNS}
    row.update(
        family=family,
        downstream=d,
        x=key_name(xk),
        y=key_name(yk),
        significant=False,
        significant_independent=False,
        paper_only=False,
        x_sisdr_db=x.mean if x else None,
        y_sisdr_db=y.mean if y else None,
    )
    if x and y and x.mean is not None and y.mean is not None:
        row["diff_db"] = x.mean - y.mean
    if x is None or y is None:
        row["note"] = "missing run: " + ", ".join(key_name(k) for k, r in ((xk, x), (yk, y)) if r is None)
        return row
    row.update(recipe_columns(x, y, alpha))  # over replicates: needs each run's mean only
    if x.excerpts is None or y.excerpts is None:
        row["note"] = "no scores.csv for " + ", ".join(r.rel for r in (x, y) if r.excerpts is None)
        return row
    try:
        check_same_test_set(x.result.get("test_set_sha1"), y.result.get("test_set_sha1"))
        t = wilcoxon_paired(x.excerpts, y.excerpts, "greater", alpha)
    except TestSetMismatch as err:
        row["note"] = f"not comparable: {err}"
        return row
    row.update(
        statistic=t.statistic,
        p=t.p,
        n=t.n,
        median_diff_db=t.median_diff,
        direction=t.direction,
        significant=t.significant,
    )
    origins = x.origins if x.origins is not None and y.origins is not None else None
    if origins is not None and not _same_origins(x, y):
        row["note"] = "the two score tables name different excerpt origins: no independent statistics"
        return row
    ind = independent_paired(x.excerpts, y.excerpts, origins, "greater", alpha)
    u = ind.units
    row["note"] = ind.note or None
    if ind.unit_kind is None or u is None:
        return row
    if u.mean_ci:
        row["mean_ci_low"], row["mean_ci_high"] = u.mean_ci
    if u.median_ci:
        row["median_ci_low"], row["median_ci_high"] = u.median_ci
    row.update(
        units=ind.unit_kind,
        unit_claim=ind.claim or None,
        corr_s=ind.corr_s,
        n_units=u.n,
        n_dropped=ind.n_dropped,
        unit_mean_diff_db=u.mean,
        unit_median_diff_db=u.median,
        p_units=u.p,
        min_p_units=u.min_p,
        reaches_alpha=u.reachable,
        significant_independent=u.significant,
        paper_only=bool(t.significant and not u.significant),
    )
    return row


def run_tests(
    runs: dict[Key, Run], downs: list[str], pairs: list[tuple[str, str]], expected: list[Key], alpha: float = ALPHA
) -> list[dict]:
    """Every comparison of the study grid (``pairs``: its (pretrain, augment) pairs)."""
    grid = set(expected) | set(runs)
    rows = []

    def add(fam: str, d: str, xk: Key, yk: Key) -> None:
        if xk in grid and yk in grid:
            rows.append(compare(FAMILIES[fam], d, xk, yk, runs, alpha))

    corpora = list(dict.fromkeys(c for c, _ in pairs))
    augments = [a for a in axis("augment") if a != "none"]  # each against augment=none
    for d in downs:
        for c in corpora:
            add("H1", d, GridPoint(c, "none", "whole", d), GridPoint.baseline(d))
        for c in corpora:
            for a in [a for a in augments if (c, a) in pairs] + [
                a for cc, a in pairs if cc == c and a != "none" and a not in augments
            ]:
                add("H2", d, GridPoint(c, a, "whole", d), GridPoint(c, "none", "whole", d))
        for c, a in pairs:
            add("R2", d, GridPoint(c, a, "mask", d), GridPoint(c, a, "whole", d))
        for c, a in pairs:
            add("Z", d, GridPoint(c, a, "whole", d), GridPoint.zeroshot(c, a, d))
        for c in corpora:
            if (twin := supervised_twin(c)) is not None:
                add("S", d, GridPoint(c, "none", "whole", d), GridPoint(twin, "none", "whole", d))
    return rows


def find(rows: list[dict], family: str, d: str, x: str) -> dict | None:
    return next((r for r in rows if r["family"].startswith(family) and r["downstream"] == d and r["x"] == x), None)
