"""The report's figures, drawn with matplotlib's Agg canvas (``report.draw``) from plain values.

Each figure has one data function (``report.panels`` for Figures 1-3, ``report.length`` for Figure
4), one drawing function here and its prose in ``report.text``. A missing value (``None``) leaves a
gap labelled "absent" (the grid point has no evaluated run, or its run was left out as stale), so a
partial study still draws, and a figure with nothing to show says why instead of drawing empty axes.
Every PNG is written atomically.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from transfersep.report.draw import bars, colors, dedupe_legend, mark_absent, note_figure, pad_ylim, save
from transfersep.report.numbers import ok


def figure1(
    path: Path,
    downstreams: Sequence[str],
    conditions: Sequence[str],
    labels: dict,
    values: dict,
    significant: dict,
    alpha: float,
    errors: dict | None = None,
    floors: dict | None = None,
    min_units: int = 6,
    replicates: int = 0,
) -> Path:
    """Grouped bars: mean SI-SDR per downstream set (groups) for each condition (bars).

    With ``replicates`` (a study whose grid points were trained several times: up to that many
    replicates each) bars are means over replicates, error bars their 95 % t-intervals and '*' the
    recipe test (``report.replicates``); without, everything is about the one trained model.

    ``values[(d, cond)]`` in dB or None; ``significant[(d, cond)]`` True draws '*';
    ``errors[(d, cond)]`` = (centre, low, high) draws the 95 % interval of the mean over independent
    units (None: fewer than ``min_units`` units, no bar). A condition ``zs:<corpus>`` is the
    zero-shot probe of that corpus (hatched, the corpus colour); ``floors[d]`` (dB) draws the
    mixture-as-estimate floor of downstream set ``d`` as a dashed line across its group.
    """
    errors, floors = errors or {}, floors or {}
    if not downstreams or not conditions:
        return note_figure(path, "Pretraining vs. no pretraining", "absent: no evaluated run in this study")
    fig = Figure(figsize=(max(8.0, 0.5 * len(conditions) * len(downstreams) + 4.5), 4.2), layout="constrained")
    ax = fig.add_subplot()
    k = len(conditions)
    width = 0.8 / k
    span = pad_ylim(ax, list(values.values()) + [v for e in errors.values() if e for v in e] + list(floors.values()))
    palette = colors()
    for j, cond in enumerate(conditions):
        xs = [i - 0.4 + width * (j + 0.5) for i in range(len(downstreams))]
        zs = cond.startswith("zs:")
        color = palette.get(cond[3:] if zs else cond, f"C{j}")
        bars(
            ax,
            xs,
            [values.get((d, cond)) for d in downstreams],
            [significant.get((d, cond), False) for d in downstreams],
            [color] * len(downstreams),
            width,
            [labels[cond]] * len(downstreams),
            span,
            errors=[errors.get((d, cond)) for d in downstreams],
            hatch="///" if zs else None,
        )
    for i, d in enumerate(downstreams):
        if ok(floors.get(d)):
            ax.hlines(
                floors[d],
                i - 0.42,
                i + 0.42,
                colors="black",
                linestyles="--",
                linewidth=1.2,
                label="mixture as estimate",
            )
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xlim(-0.5, len(downstreams) - 0.5)
    ax.set_xticks(range(len(downstreams)), [labels.get(d, d) for d in downstreams])
    if replicates:
        ax.set_ylabel(f"SI-SDR (dB), mean over replicates (up to {replicates})")
        what = (
            f"* = the recipe beats no pretraining over replicates (one-sided t-test, p < {alpha:g});\n"
            "error bars: 95 % t-interval of the mean over replicates (seeds x folds; none from one replicate)"
        )
    else:
        ax.set_ylabel("SI-SDR (dB), mean over test excerpts")
        what = (
            f"* = significant improvement over no pretraining (one-sided Wilcoxon, p < {alpha:g}), "
            "† = only under the paper's test, not over independent units;\n"
            f"error bars: 95 % t-interval of the mean over independent units (none below {min_units} units)"
        )
    ax.set_title(
        "Whole-models, no augmentation: pretraining corpus vs. no pretraining\n"
        + what
        + ("; dashed: the mixture itself as every estimate" if floors else ""),
        fontsize=9,
    )
    ax.grid(axis="y", alpha=0.3)
    dedupe_legend(ax, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), title="Pretraining")
    return save(fig, path)


def figure2(
    path: Path,
    downstreams: Sequence[str],
    corpora: Sequence[str],
    augments: Sequence[str],
    labels: dict,
    diffs: dict,
    significant: dict,
    alpha: float,
) -> Path:
    """One panel per downstream set: SI-SDR gain of each augmentation (bars) per corpus (groups).

    ``diffs[(d, corpus, aug)]`` = mean(aug) - mean(none) in dB, or None.
    """
    n = len(downstreams)
    if not n or not corpora or not augments:
        return note_figure(
            path,
            "Effect of augmentation during pretraining",
            "absent: this study pretrained no augmented model beside an unaugmented one",
        )
    fig = Figure(figsize=(max(8.0, 3.6 * n + 2.5), 4.4), layout="constrained")
    axes = fig.subplots(1, n, squeeze=False, sharey=True)[0]
    allv = list(diffs.values())
    width = 0.8 / len(augments)
    palette = colors()
    for ax, d in zip(axes, downstreams):
        span = pad_ylim(ax, allv)
        for j, a in enumerate(augments):
            xs = [i - 0.4 + width * (j + 0.5) for i in range(len(corpora))]
            bars(
                ax,
                xs,
                [diffs.get((d, c, a)) for c in corpora],
                [significant.get((d, c, a), False) for c in corpora],
                [palette.get(a, f"C{j}")] * len(corpora),
                width,
                [labels[a]] * len(corpora),
                span,
                fmt="{:+.2f}",
            )
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xlim(-0.5, len(corpora) - 0.5)
        ax.set_xticks(range(len(corpora)), [labels.get(c, c) for c in corpora], fontsize=8)
        ax.set_title(labels.get(d, d), fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("SI-SDR gain over no augmentation (dB)")
    dedupe_legend(axes[-1], fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), title="Augmentation")
    fig.suptitle(
        "Whole-models: effect of augmentation during pretraining\n"
        f"* = significant improvement (one-sided Wilcoxon, p < {alpha:g}), "
        "† = only under the paper's test, not over independent units",
        fontsize=9,
    )
    return save(fig, path)


def figure3(path: Path, downstreams: Sequence[str], curves: dict, markers: dict | None = None) -> Path:
    """One panel per downstream set: test SI-SDR against training step of that run.

    ``curves[d]`` is a list of ``(label, steps, values, style)`` where style is a dict of
    matplotlib line properties; ``markers[d]`` a list of ``(label, step, value, style)`` drawn as
    single points (the zero-shot probe at step 0). The x axis is linear to 100 steps and logarithmic above so that
    2 000 fine-tune steps and 12 000 baseline steps are both legible.
    """
    markers = markers or {}
    n = len(downstreams)
    if not n:
        return note_figure(path, "Learning curves", "absent: no evaluated fine-tune or baseline run")
    fig = Figure(figsize=(max(7.0, 4.2 * n + 2.5), 4.0), layout="constrained")
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, d in zip(axes, downstreams):
        lines = curves.get(d, [])
        for lab, steps, vals, style in lines:
            ax.plot(steps, vals, label=lab, **style)
        for lab, step, val, style in markers.get(d, []):
            ax.plot([step], [val], label=lab, linestyle="none", clip_on=False, zorder=5, **style)
        if not lines and not markers.get(d):
            ax.text(
                0.5, 0.5, "absent: no curve.csv in this study's runs", transform=ax.transAxes, ha="center", color="0.5"
            )
        last = max((float(np.max(steps)) for _, steps, _, _ in lines if len(steps)), default=0.0)
        if last > 300:  # short (test) runs stay linear
            ax.set_xscale("symlog", linthresh=100, linscale=0.5)
            ticks = [t for t in (0, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000) if t <= last * 1.1]
            ax.set_xticks(ticks, [f"{t:,}" for t in ticks], fontsize=7)
            ax.set_xticks([], minor=True)
        ax.set_xlim(left=0)
        ax.set_xlabel("training step (fine-tune runs: downstream steps)")
        ax.set_title(d, fontsize=10)
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("test SI-SDR (dB), curve subset")
    if any(curves.get(d) or markers.get(d) for d in downstreams):
        dedupe_legend(axes[-1], fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.suptitle("Pretrained + fine-tuned versus trained from scratch", fontsize=10)
    return save(fig, path)


def figure4(path: Path, table: pd.DataFrame, downs: Sequence[str], labels: dict) -> Path:
    """SI-SDR against pretraining iterations, one panel per downstream set (the mean over the
    pretrained models when there are several), from ``length.length_table``. A row whose runs were
    all left out (its note "absent: ...") is a dotted line marked "absent" at its iterations.
    ``labels``: the reader's names of the downstream sets and of the zero-shot probe ("zeroshot")."""
    downs = [d for d in downs if (table["downstream"] == d).any()]
    fig = Figure(figsize=(5.2 * max(1, len(downs)), 4.2))
    axes = fig.subplots(1, max(1, len(downs)), squeeze=False)[0]
    lines = [
        ("whole_db", "fine-tuned, whole", dict(color="tab:blue", marker="o")),
        ("mask_db", "fine-tuned, mask", dict(color="tab:orange", marker="s")),
        ("zeroshot_db", labels["zeroshot"], dict(color="tab:green", marker="^", linestyle="--")),
        ("baseline_equal_total_db", "scratch, equal total iterations", dict(color="black", marker="x")),
        ("baseline_equal_downstream_db", "scratch, equal downstream iterations", dict(color="black", linestyle=":")),
        ("floor_db", "mixture as the estimate (floor)", dict(color="grey", linestyle="--", linewidth=1)),
    ]
    for ax, d in zip(axes, downs, strict=False):
        sub = table[(table["downstream"] == d) & table["pretrain_iterations"].notna()]
        cols = [c for c, *_ in lines]
        means = sub.groupby("pretrain_iterations")[cols].mean(numeric_only=True).sort_index()
        n_models = len(sub[["pretrain", "augment"]].drop_duplicates())
        for col, name, style in lines:
            s = means[col].dropna()
            if not len(s):
                continue
            ax.plot(s.index.astype(float), s.values, label=name, **style)
            lo, hi = col.removesuffix("_db") + "_ci_low", col.removesuffix("_db") + "_ci_high"
            if n_models == 1 and lo in sub and sub[lo].notna().any():  # intervals over replicates
                band = sub.set_index("pretrain_iterations")[[lo, hi]].dropna().sort_index()
                ax.vlines(band.index.astype(float), band[lo], band[hi], color=style.get("color"), linewidth=1.2)
        gone = sub[sub["note"].fillna("").str.startswith("absent") & sub[cols].isna().all(axis=1)]
        for x in sorted(set(gone["pretrain_iterations"].astype(float))):
            ax.axvline(x, color="0.6", linestyle=":", linewidth=1)
            mark_absent(ax, x, ha="right")
        ax.set_title(labels.get(d, d) + (f" (mean of {n_models} pretrained models)" if n_models > 1 else ""))
        ax.set_xlabel("pretraining iterations")
        ax.set_ylabel("SI-SDR (dB)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="best")
    reps = table["whole_replicates"].max() if "whole_replicates" in table else None
    fig.suptitle(
        "Transfer against pretraining length"
        + (f" (means over up to {int(reps)} replicates; bars: 95 % t-intervals)" if ok(reps) and reps > 1 else "")
    )
    return save(fig, path)
