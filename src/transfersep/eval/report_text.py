"""The Markdown of the report (report.md, Table 2)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from transfersep.eval.results import AUG_LABELS, AUGMENTS, CORPORA, LABELS, Key, Run, key_name, train_command


def _num(v, fmt: str = "{:.2f}") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    text = fmt.format(v)
    if text.lstrip("+-") and text[0] in "+-" and float(text) == 0:  # no "-0.00"
        text = text[1:]
    return text


def _p(v) -> str:
    return _num(v, "{:.3g}")


def table2_markdown(t2: pd.DataFrame, downs: list[str], alpha: float) -> str:
    """Paper layout: rows augment x corpus, columns downstream; significant increases in bold."""
    head = "| Augmentation | Pretraining | " + " | ".join(LABELS.get(d, d) for d in downs) + " |\n"
    head += "|---|---|" + "---:|" * len(downs) + "\n"
    lines = []
    for a in AUGMENTS:
        for c in CORPORA:
            cells = []
            for d in downs:
                r = t2[(t2.augment == a) & (t2.pretrain == c) & (t2.downstream == d)].iloc[0]
                s = _num(r["mask_minus_whole_db"], "{:+.2f}")
                cells.append(f"**{s}**" if r["significant_increase"] and s != "—" else s)
            lines.append(f"| {AUG_LABELS[a]} | {LABELS[c]} | " + " | ".join(cells) + " |")
    note = (f"\nMask-model minus whole-model mean SI-SDR (dB). **Bold**: the mask-model is significantly "
            f"better (one-sided Wilcoxon signed-rank on per-excerpt SI-SDR, p < {alpha:g}). — : a run is "
            "missing.\n")
    return head + "\n".join(lines) + "\n" + note


def tests_markdown(tests: pd.DataFrame, family: str) -> str:
    df = tests[tests.family.str.startswith(family)]
    out = ["| downstream | x | y | x (dB) | y (dB) | x − y (dB) | median diff | W+ | p | n | direction | "
           "significant |", "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for _, r in df.iterrows():
        if r["note"] and not isinstance(r["note"], float):
            tail = f"— | — | — | — | — | {r['note']} |"
            diff = _num(r["diff_db"], "{:+.2f}")
            out.append(f"| {r.downstream} | {r.x} | {r.y} | {_num(r.x_sisdr_db)} | {_num(r.y_sisdr_db)} | "
                       f"{diff} | {tail}")
            continue
        out.append(f"| {r.downstream} | {r.x} | {r.y} | {_num(r.x_sisdr_db)} | {_num(r.y_sisdr_db)} | "
                   f"{_num(r.diff_db, '{:+.2f}')} | {_num(r.median_diff_db, '{:+.2f}')} | "
                   f"{_num(r.statistic, '{:.1f}')} | {_p(r.p)} | {int(r.n)} | {r.direction} | "
                   f"{'**yes**' if r.significant else 'no'} |")
    return "\n".join(out) + "\n"


def markdown_report(*, runs_dir: Path, alpha: float, downs: list[str], runs: dict[Key, Run],
                    tests: pd.DataFrame, table2_md: str, missing: list[Key], problems: list[str],
                    created: str) -> str:
    n_expected = len(missing) + sum(1 for k in runs if k[-1] in downs)
    s = [f"# Transfer-learning study report\n",
         f"Runs: `{runs_dir}` · generated {created} · significance: one-sided Wilcoxon signed-rank "
         f"test on paired per-excerpt SI-SDR (mean over non-silent sources), p < {alpha:g}, "
         "no multiple-comparison correction.\n",
         f"{len(runs)} evaluated run(s) found; {len(missing)} of {n_expected} grid point(s) of the "
         f"study grid missing (downstream sets: {', '.join(downs) or 'none found'}).\n"]
    if problems:
        s.append("## Problems\n\n" + "\n".join(f"- {p}" for p in problems) + "\n")
    s += ["## Figure 1 — pretraining vs. no pretraining (H1)\n",
          "![Figure 1](fig1_pretraining.png)\n",
          "Whole-models fine-tuned from pretraining without augmentation against the from-scratch "
          "baseline; x better than y is tested.\n", tests_markdown(tests, "H1"),
          "## Figure 2 — augmentation during pretraining (H2)\n",
          "![Figure 2](fig2_augmentation.png)\n",
          "Whole-models: each augmentation against no augmentation, same corpus.\n",
          tests_markdown(tests, "H2"),
          "## Figure 3 — learning curves\n",
          "![Figure 3](fig3_curves.png)\n",
          "Test SI-SDR on the curve subset (the first excerpts of the fixed test list) every "
          "`every_n_steps` optimizer steps. Each run is drawn against its own step count: a "
          "fine-tune curve starts at 0 with the pretrained model (its pretraining steps are "
          "not added), the from-scratch baseline runs its full budget. Solid: whole-model, dashed: "
          "mask-model, both without augmentation.\n",
          "## Table 2 — mask-model minus whole-model (R2)\n",
          "![Table 2](table2_mask_minus_whole.png)\n", table2_md, tests_markdown(tests, "R2"),
          "## Runs\n",
          "| run | grid point | SI-SDR mean (dB) | median | n | excluded pairs |",
          "|---|---|---:|---:|---:|---:|"]
    for key, r in sorted(runs.items(), key=lambda kv: kv[1].rel):
        o = r.result.get("overall") or {}
        s.append(f"| {r.rel} | {key_name(key)} | {_num(o.get('mean'))} | {_num(o.get('median'))} | "
                 f"{o.get('n', '—')} | {r.result.get('n_excluded', '—')} |")
    s.append("\n## Missing grid points\n")
    if missing:
        s.append("Grid points of the study without an evaluated run, with the command that produces "
                 "each (add your study/data options):\n")
        s += [f"- `{key_name(k)}` — `{train_command(k)}`" for k in missing]
    else:
        s.append("None: the study grid is complete.")
    return "\n".join(s) + "\n"
