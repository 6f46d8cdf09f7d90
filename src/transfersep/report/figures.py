"""The paper's figures (and Table 2 as an image), drawn with matplotlib's Agg canvas.

The object API (``Figure`` + ``FigureCanvasAgg``) is used instead of pyplot so that importing this
module never changes a user's global matplotlib backend. Every PNG is written atomically.
Inputs are plain dicts built by ``report``; a missing value (``None``) leaves a gap labelled
"absent" (the grid point has no evaluated run), so a partial study still draws, and a figure with
nothing to show says why instead of drawing empty axes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from transfersep.files import atomic_write

# the paper's colours, by name; a corpus or augmentation the grid adds takes the next free colour
# of matplotlib's Tableau cycle (so figures stay stable when sweeps/grid.yaml grows)
KNOWN_COLORS = {
    "none": "#8c8c8c",
    "musdb": "#1f77b4",
    "slakh": "#ff7f0e",
    "both": "#2ca02c",
    "pitch": "#9467bd",
    "stretch": "#8c564b",
    "incoherent": "#17becf",
}
DPI = 150


def colors() -> dict[str, str]:
    """A colour for "none" and every corpus and augmentation of the grid, in the grid's order."""
    from matplotlib.colors import TABLEAU_COLORS

    from transfersep.study.grid import load_grid

    grid = load_grid()
    free = iter(c for c in TABLEAU_COLORS.values() if c not in KNOWN_COLORS.values())
    names = dict.fromkeys(["none", *grid.pretrainings, *grid.axes["augment"]])
    return {n: KNOWN_COLORS.get(n) or next(free, "#444444") for n in names}


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight"))


def _ok(v) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v))


def _fmt(v: float, fmt: str) -> str:
    text = fmt.format(v)
    return text.replace("-0.00", "0.00").replace("+0.00", "0.00")  # no signed zeros


def _bars(ax, centers, values, sigs, colors, width, labels, span, fmt="{:.2f}", errors=None, hatch=None) -> None:
    """Bars with their value beyond the end, a large '*' beyond that for significant ones and
    'absent' for gaps (``sigs[i]`` = "paper" draws '*†'). ``span`` is the y range in dB that sets the
    label offsets; ``errors[i]``
    = (centre, low, high) in dB draws an error bar from low to high (its centre, the mean over
    independent units, may differ slightly from the bar, the mean over excerpts)."""
    errors = errors or [None] * len(values)
    for x, v, s, c, lab, err in zip(centers, values, sigs, colors, labels, errors):
        if not _ok(v):
            ax.text(
                x,
                0.5,
                "absent",
                rotation=90,
                ha="center",
                va="center",
                fontsize=7,
                color="0.45",
                transform=ax.get_xaxis_transform(),
            )  # x in data, y in axes units
            continue
        ax.bar(x, v, width=width, color=c, edgecolor="black", linewidth=0.5, label=lab, hatch=hatch)
        top = v
        if err is not None:
            centre, lo, hi = err
            ax.errorbar(
                [x],
                [centre],
                yerr=[[max(centre - lo, 0.0)], [max(hi - centre, 0.0)]],
                fmt="none",
                ecolor="black",
                elinewidth=0.9,
                capsize=2.5,
            )
            top = max(hi, v) if v >= 0 else min(lo, v)
        sign = 1 if v >= 0 else -1
        va = "bottom" if sign > 0 else "top"
        ax.text(x, top + sign * 0.015 * span, _fmt(v, fmt), ha="center", va=va, fontsize=7)
        if s:  # "paper": significant only under the paper's test, not over independent units
            ax.text(
                x,
                top + sign * 0.07 * span,
                "*†" if s == "paper" else "*",
                ha="center",
                va=va,
                fontsize=15,
                fontweight="bold",
            )


def _pad_ylim(ax, values) -> float:
    """Room for labels and stars beyond the bars; returns the data span used for offsets."""
    vals = [v for v in values if _ok(v)] + [0.0]
    lo, hi = min(vals), max(vals)
    if lo == hi == 0.0:  # nothing to draw: a neutral range
        lo, hi = -1.0, 1.0
    span = max(hi - lo, 1.0)
    ax.set_ylim(lo - (0.22 * span if lo < 0 else 0.03 * span), hi + (0.22 * span if hi > 0 else 0.03 * span))
    return span


def _dedupe_legend(ax, **kw) -> None:
    handles, labels = ax.get_legend_handles_labels()
    seen: dict[str, object] = {}
    for h, lab in zip(handles, labels):
        seen.setdefault(lab, h)
    if seen:
        ax.legend(list(seen.values()), list(seen.keys()), **kw)


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
        return _note_figure(path, "Pretraining vs. no pretraining", "absent: no evaluated run in this study")
    fig = Figure(figsize=(max(8.0, 0.5 * len(conditions) * len(downstreams) + 4.5), 4.2), layout="constrained")
    ax = fig.add_subplot()
    k = len(conditions)
    width = 0.8 / k
    span = _pad_ylim(ax, list(values.values()) + [v for e in errors.values() if e for v in e] + list(floors.values()))
    palette = colors()
    for j, cond in enumerate(conditions):
        xs = [i - 0.4 + width * (j + 0.5) for i in range(len(downstreams))]
        zs = cond.startswith("zs:")
        color = palette.get(cond[3:] if zs else cond, f"C{j}")
        _bars(
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
        if _ok(floors.get(d)):
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
    _dedupe_legend(ax, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), title="Pretraining")
    return _save(fig, path)


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
        return _note_figure(
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
        span = _pad_ylim(ax, allv)
        for j, a in enumerate(augments):
            xs = [i - 0.4 + width * (j + 0.5) for i in range(len(corpora))]
            _bars(
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
    _dedupe_legend(axes[-1], fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), title="Augmentation")
    fig.suptitle(
        "Whole-models: effect of augmentation during pretraining\n"
        f"* = significant improvement (one-sided Wilcoxon, p < {alpha:g}), "
        "† = only under the paper's test, not over independent units",
        fontsize=9,
    )
    return _save(fig, path)


def _note_figure(path: Path, title: str, note: str) -> Path:
    """A small figure that says why there is nothing to plot (never empty axes)."""
    fig = Figure(figsize=(7.0, 2.0))
    fig.text(0.5, 0.62, title, ha="center", va="center", fontsize=11)
    fig.text(0.5, 0.35, note, ha="center", va="center", fontsize=9, color="0.35")
    return _save(fig, path)


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
        return _note_figure(path, "Learning curves", "absent: no evaluated fine-tune or baseline run")
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
        _dedupe_legend(axes[-1], fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.suptitle("Pretrained + fine-tuned versus trained from scratch", fontsize=10)
    return _save(fig, path)


def table_image(
    path: Path,
    title: str,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    cells: np.ndarray,
    bold: np.ndarray,
    note: str,
) -> Path:
    """A table rendered as an image; ``cells`` holds formatted strings, ``bold`` marks cells."""
    fig = Figure(figsize=(2.6 + 1.5 * len(col_labels), 0.9 + 0.28 * (len(row_labels) + 1)))
    ax = fig.add_axes((0.0, 0.08, 1.0, 0.82))
    ax.axis("off")
    tab = ax.table(
        cellText=cells,
        rowLabels=row_labels,
        colLabels=col_labels,
        loc="upper center",
        cellLoc="center",
        bbox=(0.32, 0.0, 0.66, 1.0),
    )
    tab.auto_set_font_size(False)
    tab.set_fontsize(9)
    for (r, c), cell in tab.get_celld().items():
        if r >= 1 and c >= 0 and bold[r - 1, c]:
            cell.get_text().set_fontweight("bold")
            cell.set_facecolor("#d9ead3")
    fig.text(0.5, 0.96, title, ha="center", va="top", fontsize=10)
    fig.text(0.5, 0.01, note, ha="center", va="bottom", fontsize=8)
    return _save(fig, path)
