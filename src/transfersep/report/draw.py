"""What every figure of the report is drawn with: its colours, labelled bars, a figure that says
why it is empty, a table as an image, and the atomic PNG writer.

The object API (``Figure`` + ``FigureCanvasAgg``) is used instead of pyplot so that importing this
module never changes a user's global matplotlib backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from transfersep.files import atomic_write
from transfersep.report.numbers import num, ok

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


def save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight"))


def mark_absent(ax, x: float, ha: str) -> None:
    """The word "absent" written upright at ``x`` (data units), half-way up the axes: a grid point
    the report expected and could not score stays visible instead of leaving a silent gap."""
    ax.text(
        x, 0.5, "absent", rotation=90, ha=ha, va="center", fontsize=7, color="0.45", transform=ax.get_xaxis_transform()
    )


def bars(ax, centers, values, sigs, colors, width, labels, span, fmt="{:.2f}", errors=None, hatch=None) -> None:
    """Bars with their value beyond the end, a large '*' beyond that for significant ones and
    'absent' for gaps (``sigs[i]`` = "paper" draws '*†'). ``span`` is the y range in dB that sets the
    label offsets; ``errors[i]``
    = (centre, low, high) in dB draws an error bar from low to high (its centre, the mean over
    independent units, may differ slightly from the bar, the mean over excerpts)."""
    errors = errors or [None] * len(values)
    for x, v, s, c, lab, err in zip(centers, values, sigs, colors, labels, errors):
        if not ok(v):
            mark_absent(ax, x, ha="center")
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
        ax.text(x, top + sign * 0.015 * span, num(v, fmt), ha="center", va=va, fontsize=7)
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


def pad_ylim(ax, values) -> float:
    """Room for labels and stars beyond the bars; returns the data span used for offsets."""
    vals = [v for v in values if ok(v)] + [0.0]
    lo, hi = min(vals), max(vals)
    if lo == hi == 0.0:  # nothing to draw: a neutral range
        lo, hi = -1.0, 1.0
    span = max(hi - lo, 1.0)
    ax.set_ylim(lo - (0.22 * span if lo < 0 else 0.03 * span), hi + (0.22 * span if hi > 0 else 0.03 * span))
    return span


def dedupe_legend(ax, **kw) -> None:
    handles, labels = ax.get_legend_handles_labels()
    seen: dict[str, object] = {}
    for h, lab in zip(handles, labels):
        seen.setdefault(lab, h)
    if seen:
        ax.legend(list(seen.values()), list(seen.keys()), **kw)


def note_figure(path: Path, title: str, note: str) -> Path:
    """A small figure that says why there is nothing to plot (never empty axes)."""
    fig = Figure(figsize=(7.0, 2.0))
    fig.text(0.5, 0.62, title, ha="center", va="center", fontsize=11)
    fig.text(0.5, 0.35, note, ha="center", va="center", fontsize=9, color="0.35")
    return save(fig, path)


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
    return save(fig, path)
