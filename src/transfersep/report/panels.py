"""What Figures 1-4 draw: the values of each figure taken from the study's runs and comparisons,
handed to its drawing function (``report.figures``).

Bar heights are ``result.json``'s overall mean (the mean of the per-excerpt values), or with
replicates the mean over them; a star is the comparison's (``report.comparisons``); error bars the
95 % t-interval of a mean over independent units (or over replicates).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from transfersep.report import figures
from transfersep.report.comparisons import find
from transfersep.report.draw import colors
from transfersep.report.replicates import has_replicates, recipe_interval, replicate_summary
from transfersep.report.results import Key, Run, axis, key_name, label, zeroshot_label
from transfersep.report.stats import MIN_UNITS_INTERVAL
from transfersep.report.stats import mean_interval as _unit_interval
from transfersep.run.point import GridPoint


def mean_interval(run: Run | None) -> tuple[float, float, float] | None:
    """(mean over units, low, high): the 95 % t-interval of a run's mean SI-SDR over its
    independent test units, or None (no scores, no origins, or too few units)."""
    if run is None or run.excerpts is None:
        return None
    return _unit_interval(run.excerpts, run.origins)


def _sig(row: dict | None, recipe: bool = False) -> bool | str:
    """True, False, or "paper" (significant only under the paper's test) for a bar's star; with
    ``recipe`` (a study with replicates) the star is the recipe test's."""
    if recipe:
        return bool(row and row.get("significant_recipe"))
    if not row or not row["significant"]:
        return False
    return "paper" if row["paper_only"] else True


def _floor(run: Run | None) -> float | None:
    return run.floor if run else None


def draw_figures(
    out: Path,
    runs: dict[Key, Run],
    downs: list[str],
    pairs: list[tuple[str, str]],
    rows: list[dict],
    alpha: float,
    length: pd.DataFrame | None = None,
) -> dict:
    """Figures 1-3 from the paper's grid (``runs``) and its comparisons (``rows``), and Figure 4 from
    its table (``length.length_table``, None: the study has no Figure 4); returns {name: path}."""
    paths = {}
    corpora = [c for c in dict.fromkeys(c for c, _ in pairs) if (c, "none") in pairs]
    zs = [c for c in corpora if any(k.stage == "zeroshot" and k.pretraining == c for k in runs)]
    conds = ["none", *corpora, *(f"zs:{c}" for c in zs)]
    zs_label = zeroshot_label()
    labels = {c: label("pretrain", c) for c in ("none", *corpora)}
    labels.update({f"zs:{c}": f"{label('pretrain', c)}, {zs_label}" for c in zs})
    vals, sig, errs, floors = {}, {}, {}, {}
    rep = has_replicates(runs)  # bars over replicates (the recipe), else the one trained model

    def bar(r: Run | None) -> tuple:
        if r is None:
            return None, None
        return (replicate_summary(r)["mean"], recipe_interval(r)) if rep else (r.mean, mean_interval(r))

    for d in downs:
        floor = next((f for c in zs if (f := _floor(runs.get(GridPoint.zeroshot(c, "none", d)))) is not None), None)
        if floor is not None:
            floors[d] = floor
        vals[(d, "none")], errs[(d, "none")] = bar(runs.get(GridPoint.baseline(d)))
        for c in corpora:
            row = find(rows, "H1", d, key_name(GridPoint(c, "none", "whole", d)))
            vals[(d, c)], errs[(d, c)] = bar(runs.get(GridPoint(c, "none", "whole", d)))
            sig[(d, c)] = _sig(row, rep)
        for c in zs:
            vals[(d, f"zs:{c}")], errs[(d, f"zs:{c}")] = bar(runs.get(GridPoint.zeroshot(c, "none", d)))
    paths["fig1"] = figures.figure1(
        out / "fig1_pretraining.png",
        downs,
        conds,
        labels,
        vals,
        sig,
        alpha,
        errs,
        floors,
        MIN_UNITS_INTERVAL,
        replicates=max((len(r.replicates) for r in runs.values()), default=1) if rep else 0,
    )

    aug_corpora = [c for c in corpora if any(cc == c and a != "none" for cc, a in pairs)]
    grid_augs = [a for a in axis("augment") if a != "none"]
    augs = [a for a in grid_augs if any((c, a) in pairs for c in aug_corpora)]
    diffs, sig2 = {}, {}
    for d in downs:
        for c in aug_corpora:
            for a in augs:
                r = find(rows, "H2", d, key_name(GridPoint(c, a, "whole", d)))
                diffs[(d, c, a)], sig2[(d, c, a)] = (r["diff_db"], _sig(r)) if r else (None, False)
    paths["fig2"] = figures.figure2(
        out / "fig2_augmentation.png",
        downs,
        aug_corpora,
        augs,
        {
            **{d: label("downstream", d) for d in downs},
            **{c: label("pretrain", c) for c in aug_corpora},
            **{a: label("augment", a) for a in augs},
        },
        diffs,
        sig2,
        alpha,
    )

    curves: dict[str, list] = {}
    markers: dict[str, list] = {}
    palette = colors()
    for d in downs:
        lines = []
        b = runs.get(GridPoint.baseline(d))
        if b is not None and b.curve is not None:
            lines.append(("from scratch", b.curve["step"], b.curve["sisdr_db"], {"color": "black", "linewidth": 2.0}))
        for f, ls in (("whole", "-"), ("mask", "--")):  # the two modes Figure 3 draws
            for c in corpora:
                r = runs.get(GridPoint(c, "none", f, d))
                if r is not None and r.curve is not None:
                    lines.append(
                        (
                            f"{label('pretrain', c)} → {label('finetune', f)}",
                            r.curve["step"],
                            r.curve["sisdr_db"],
                            {"color": palette.get(c, "C0"), "linestyle": ls, "linewidth": 1.4},
                        )
                    )
        curves[d] = lines
        markers[d] = [
            (
                f"{label('pretrain', c)}, {zs_label}",
                0,
                runs[GridPoint.zeroshot(c, "none", d)].mean,
                {"color": palette.get(c, "C0"), "marker": "D", "markersize": 6, "markeredgecolor": "black"},
            )
            for c in zs
            if runs.get(GridPoint.zeroshot(c, "none", d)) and runs[GridPoint.zeroshot(c, "none", d)].mean is not None
        ]
    paths["fig3"] = figures.figure3(
        out / "fig3_curves.png",
        [label("downstream", d) for d in downs],
        {label("downstream", d): v for d, v in curves.items()},
        {label("downstream", d): v for d, v in markers.items()},
    )
    if length is not None:
        names = {**{d: label("downstream", d) for d in downs}, "zeroshot": zs_label}
        paths["fig4"] = figures.figure4(out / "fig4_length.png", length, downs, names)
    return paths
