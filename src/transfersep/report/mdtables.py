"""The report's Markdown tables: Table 2, the comparisons of a family, Figure 4's table. One
number formatting for all of them (``report.numbers``)."""

from __future__ import annotations

import pandas as pd

from transfersep.report.numbers import num, ok
from transfersep.report.results import label


def table2_markdown(t2: pd.DataFrame, downs: list[str], alpha: float) -> str:
    """Paper layout: rows augment x corpus, columns downstream; significant increases in bold,
    a dagger where only the paper's test finds them."""
    head = "| Augmentation | Pretraining | " + " | ".join(label("downstream", d) for d in downs) + " |\n"
    head += "|---|---|" + "---:|" * len(downs) + "\n"
    lines = []
    for a, c in dict.fromkeys(zip(t2.augment, t2.pretrain)):
        cells = []
        for d in downs:
            r = t2[(t2.augment == a) & (t2.pretrain == c) & (t2.downstream == d)].iloc[0]
            v = num(r["mask_minus_whole_db"], "{:+.2f}")
            if v == "—":
                cells.append("absent" if _absent(r["note"]) else v)
                continue
            v = f"**{v}**" if r["significant_increase"] else v
            cells.append(v + (" †" if r["paper_only"] else ""))
        lines.append(f"| {label('augment', a)} | {label('pretrain', c)} | " + " | ".join(cells) + " |")
    note = (
        f"\nMask-model minus whole-model mean SI-SDR (dB). **Bold**: the mask-model is significantly "
        f"better (one-sided Wilcoxon signed-rank on per-excerpt SI-SDR, p < {alpha:g}); †: significant "
        "only under the paper's test, not over independent units (see the comparisons below). absent: no "
        "evaluated run; —: no value.\n"
    )
    return head + "\n".join(lines) + "\n" + note


def _absent(note) -> bool:
    return isinstance(note, str) and (note.startswith("missing run") or note == "absent")


def _p(v) -> str:
    return num(v, "{:.3g}")


def _ci(mid, lo, hi, n=None, kind=None) -> str:
    """``+0.20 [+0.10, +0.30]``; without an interval, the estimate and why there is none."""
    if not ok(mid):
        return "—"
    if not ok(lo):
        why = f" ({_int(n)} {kind}s: too few for an interval)" if kind else ""
        return num(mid, "{:+.2f}") + why
    return f"{num(mid, '{:+.2f}')} [{num(lo, '{:+.2f}')}, {num(hi, '{:+.2f}')}]"


def _int(v) -> str:
    return str(int(v)) if ok(v) else "—"


def tests_markdown(tests: pd.DataFrame, family: str) -> str:
    """The comparisons of one family: the paper's columns, then the independent ones."""
    df = tests[tests.family.str.startswith(family)]
    if df.empty:
        return "No comparison of this kind in the study's grid.\n"
    waiting = df.note.map(_absent)
    tail = (
        f"\n{int(waiting.sum())} more comparison(s) of this kind wait for a missing run (listed once, under "
        "Missing grid points).\n"
        if waiting.any()
        else ""
    )
    df = df[~waiting]
    if df.empty:
        return tail.lstrip("\n")
    out = [
        "| downstream | x | y | x (dB) | y (dB) | x − y (dB) | paper: W+ | p | n | significant | "
        "independent: units | mean diff [95 % CI] | median diff [95 % CI] | p | smallest p | significant | note |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---:|---|---|",
    ]
    for _, r in df.iterrows():
        head = (
            f"| {r.downstream} | {r.x} | {r.y} | {num(r.x_sisdr_db)} | {num(r.y_sisdr_db)} | "
            f"{num(r.diff_db, '{:+.2f}')} | "
        )
        note = r["note"] if isinstance(r["note"], str) else ""
        if pd.isna(r.p):
            out.append(head + "— | — | — | — | — | — | — | — | — | — | " + note + " |")
            continue
        if r.paper_only:
            note = "⚠ significant only under the paper's test" + (f"; {note}" if note else "")
        paper = f"{num(r.statistic, '{:.1f}')} | {_p(r.p)} | {_int(r.n)} | {'**yes**' if r.significant else 'no'} | "
        if not isinstance(r.units, str):  # no units: the paper's column only
            out.append(head + paper + "— | — | — | — | — | — | " + note + " |")
            continue
        units = f"{_int(r.n_units)} {r.units}s" + (f" ({r.unit_claim})" if isinstance(r.unit_claim, str) else "")
        if not pd.isna(r.n_dropped) and int(r.n_dropped):
            units += f" ({int(r.n_dropped)} straddling excerpts left out)"
        if r.significant_independent:
            indep_sig = "**yes**"
        else:
            indep_sig = "no" if bool(r.reaches_alpha) else "cannot reach α"
        out.append(
            head + paper + f"{units} | {_ci(r.unit_mean_diff_db, r.mean_ci_low, r.mean_ci_high, r.n_units, r.units)} | "
            f"{_ci(r.unit_median_diff_db, r.median_ci_low, r.median_ci_high, r.n_units, r.units)} | "
            f"{_p(r.p_units)} | {_p(r.min_p_units)} | {indep_sig} | {note} |"
        )
    return "\n".join(out) + "\n" + tail


def _interval(lo, hi) -> str:
    return f" [{num(lo, '{:+.2f}')}, {num(hi, '{:+.2f}')}]" if ok(lo) and ok(hi) else ""


def _verdict(row: pd.Series, t: str) -> str:
    """The paper's p / the per-unit p (units, smallest p, interval) / the recipe over replicates."""
    if not ok(row[f"{t}_diff_db"]):
        return "—"
    p, pu = num(row[f"{t}_p"], "{:.2g}"), num(row[f"{t}_p_units"], "{:.2g}")
    n, kind = row[f"{t}_n_units"], row[f"{t}_units"]
    units = pu
    if ok(n):
        kind = kind if isinstance(kind, str) else "unit"
        units = (
            f"{pu} ({int(n)} {kind}s, smallest p {num(row[f'{t}_min_p_units'], '{:.2g}')}"
            f"{_interval(row[f'{t}_unit_ci_low'], row[f'{t}_unit_ci_high']) or ', no interval'})"
        )
    out = f"{num(row[f'{t}_diff_db'], '{:+.2f}')} dB, p = {p} / {units}"
    if ok(row[f"{t}_recipe_n"]) and row[f"{t}_recipe_n"] > 1:
        out += (
            f"; recipe over {int(row[f'{t}_recipe_n'])} replicates: {num(row[f'{t}_recipe_diff_db'], '{:+.2f}')}"
            f"{_interval(row[f'{t}_recipe_ci_low'], row[f'{t}_recipe_ci_high'])} dB, "
            f"p = {num(row[f'{t}_p_recipe'], '{:.2g}')}, P(better) {num(row[f'{t}_p_better'])}"
        )
    return out


def length_markdown(table: pd.DataFrame) -> str:
    """Figure 4's table: one line per row of ``length.length_table`` (a row left out: its note)."""
    head = (
        "| set | pretrained model | pretraining it. | whole | mask | zero-shot | floor | scratch, equal downstream "
        "| scratch, equal total | H1: whole − scratch (equal total) | start: whole − scratch (equal downstream) |\n"
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |\n"
    )
    body = ""
    for _, r in table.iterrows():
        model = f"{label('pretrain', r['pretrain'])}, {label('augment', r['augment']).lower()}"
        it = f"{int(r['pretrain_iterations']):,}" if ok(r["pretrain_iterations"]) else "—"
        vals = " | ".join(
            num(r[c])
            for c in ("whole_db", "mask_db", "zeroshot_db", "floor_db")
            + ("baseline_equal_downstream_db", "baseline_equal_total_db")
        )
        body += f"| {label('downstream', r['downstream'])} | {model} | {it} | {vals} "
        h1, start = _verdict(r, "h1"), _verdict(r, "start")
        if h1 == "—" and isinstance(r["note"], str) and r["note"].startswith("absent"):
            h1 = r["note"]  # a run left out: say so where its comparison would stand
        body += f"| {h1} | {start} |\n"
    return head + body
