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
draws their 95 % t-intervals (``report.replicates``). Outputs: ``fig4_length.png``, ``table4_length.csv`` and a section
of ``report.md``. The baseline's scores at kept steps are ``baseline/<set>/kept/step-<n>/``; its
final score is its total budget.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from transfersep.files import atomic_write_text
from transfersep.report.comparisons import compare
from transfersep.report.replicates import replicate_summary
from transfersep.report.results import Key, Run, axis, group_replicates, label, load_run
from transfersep.report.stats import ALPHA
from transfersep.run.provenance import stale_reason
from transfersep.study.folders import run_results

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


def _baseline_step(run: Run) -> int | None:
    gp, extra = run.result["grid_point"], run.result.get("extra") or {}
    step = gp.get("kept_step", extra.get("evaluated_step", extra.get("steps")))
    return None if step is None else int(step)


def scan_length(study_dir: Path) -> tuple[dict[Key, Run], list[str]]:
    """The fine-tunes and probes of every ``pretrain_steps`` value, keyed by their grid key plus the
    value (``("finetune", c, a, f, d, v)``, ``("zeroshot", c, a, d, v)``), and every score of the
    baselines by iteration (``("baseline", d, "<step>")``); stale runs are left out."""
    study_dir = Path(study_dir)
    paths = run_results(study_dir) + sorted(study_dir.glob("baseline/*/kept/step-*/result.json"))
    found: dict[tuple, Run] = {}
    problems: list[str] = []
    for path in dict.fromkeys(paths):
        try:
            run = load_run(path, study_dir)
        except (ValueError, OSError, KeyError, pd.errors.ParserError):
            continue  # scan() of the main report names these
        if stale_reason(run.dir, (run.result.get("extra") or {}).get("parent")):
            continue
        if run.key[0] == "baseline":
            step = _baseline_step(run)
            if step is None:
                problems.append(f"{run.rel}: its result.json records no step; left out of Figure 4")
                continue
            run.key = ("baseline", run.key[1], str(step))
        else:
            run.key = (*run.key, str(run.result["grid_point"].get("pretrain_steps", "end")))
        found.setdefault((run.key, run.replicate), run)
    return group_replicates(found.values()), problems


def _parent_steps(run: Run | None) -> int | None:
    steps = (((run.result.get("extra") or {}).get("parent") or {}).get("steps")) if run else None
    return None if steps is None else int(steps)


def _mean(run: Run | None) -> float | None:
    """The mean over a grid point's replicates (the run's own mean when it was trained once)."""
    return replicate_summary(run)["mean"] if run else None


def _spread(prefix: str, run: Run | None) -> dict:
    s = replicate_summary(run) if run else {"n": None, "low": None, "high": None}
    return {f"{prefix}_replicates": s["n"], f"{prefix}_ci_low": s["low"], f"{prefix}_ci_high": s["high"]}


def _floor(run: Run | None) -> float | None:
    v = ((run.result.get("extra") or {}).get("mixture_as_estimate_sisdr")) if run else None
    return None if v is None else float(v)


def _test(prefix: str, row: dict) -> dict:
    out = {f"{prefix}_{k}": row.get(v) for k, v in TEST_FIELDS.items()}
    for k in ("sig", "sig_units", "sig_recipe"):
        out[f"{prefix}_{k}"] = bool(out[f"{prefix}_{k}"])
    return out


def length_rows(runs: dict[Key, Run], downs: list[str], alpha: float = ALPHA) -> list[dict]:
    """One row per (downstream set, pretrained model, pretrain_steps value) that has any run."""
    values = list(axis("pretrain_steps"))
    present = {k[-1] for k in runs if k[0] != "baseline"}
    values += sorted(present - set(values))
    pairs = list(dict.fromkeys((k[1], k[2]) for k in runs if k[0] != "baseline"))
    rows = []
    for d in downs:
        for c, a in pairs:
            for v in values:
                wk, mk, zk = (
                    ("finetune", c, a, "whole", d, v),
                    ("finetune", c, a, "mask", d, v),
                    ("zeroshot", c, a, d, v),
                )
                w, m, z = runs.get(wk), runs.get(mk), runs.get(zk)
                if not (w or m or z):
                    continue
                pre = next((s for s in map(_parent_steps, (w, m, z)) if s is not None), None)
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
                    floor_db=_floor(z),
                    **_spread("whole", w),
                )
                notes = []
                if ft is not None:
                    down_k = ("baseline", d, str(ft))
                    row["baseline_equal_downstream_db"] = _mean(runs.get(down_k))
                    row.update(_test("start", compare(START, d, wk, down_k, runs, alpha)))
                    if pre is not None:
                        tot_k = ("baseline", d, str(pre + ft))
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


def _ok(v) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v))


def figure4(path: Path, table: pd.DataFrame, downs: list[str]) -> Path:
    """SI-SDR against pretraining iterations, one panel per downstream set (the mean over the
    pretrained models when there are several)."""
    from matplotlib.figure import Figure

    from transfersep.report.figures import _save

    downs = [d for d in downs if (table["downstream"] == d).any()]
    fig = Figure(figsize=(5.2 * max(1, len(downs)), 4.2))
    axes = fig.subplots(1, max(1, len(downs)), squeeze=False)[0]
    lines = [
        ("whole_db", "fine-tuned, whole", dict(color="tab:blue", marker="o")),
        ("mask_db", "fine-tuned, mask", dict(color="tab:orange", marker="s")),
        ("zeroshot_db", label("finetune", "zeroshot"), dict(color="tab:green", marker="^", linestyle="--")),
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
        ax.set_title(label("downstream", d) + (f" (mean of {n_models} pretrained models)" if n_models > 1 else ""))
        ax.set_xlabel("pretraining iterations")
        ax.set_ylabel("SI-SDR (dB)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="best")
    reps = table["whole_replicates"].max() if "whole_replicates" in table else None
    fig.suptitle(
        "Transfer against pretraining length"
        + (f" (means over up to {int(reps)} replicates; bars: 95 % t-intervals)" if _ok(reps) and reps > 1 else "")
    )
    return _save(fig, path)


def _cell(v, fmt: str = "{:.2f}") -> str:
    return fmt.format(v) if _ok(v) else "—"


def _interval(lo, hi) -> str:
    return f" [{lo:+.2f}, {hi:+.2f}]" if _ok(lo) and _ok(hi) else ""


def _verdict(row: pd.Series, t: str) -> str:
    """The paper's p / the per-unit p (units, smallest p, interval) / the recipe over replicates."""
    if not _ok(row[f"{t}_diff_db"]):
        return "—"
    p, pu = _cell(row[f"{t}_p"], "{:.2g}"), _cell(row[f"{t}_p_units"], "{:.2g}")
    n, kind = row[f"{t}_n_units"], row[f"{t}_units"]
    units = pu
    if _ok(n):
        kind = kind if isinstance(kind, str) else "unit"
        units = (
            f"{pu} ({int(n)} {kind}s, smallest p {_cell(row[f'{t}_min_p_units'], '{:.2g}')}"
            f"{_interval(row[f'{t}_unit_ci_low'], row[f'{t}_unit_ci_high']) or ', no interval'})"
        )
    out = f"{row[f'{t}_diff_db']:+.2f} dB, p = {p} / {units}"
    if _ok(row[f"{t}_recipe_n"]) and row[f"{t}_recipe_n"] > 1:
        out += (
            f"; recipe over {int(row[f'{t}_recipe_n'])} replicates: {row[f'{t}_recipe_diff_db']:+.2f}"
            f"{_interval(row[f'{t}_recipe_ci_low'], row[f'{t}_recipe_ci_high'])} dB, "
            f"p = {_cell(row[f'{t}_p_recipe'], '{:.2g}')}, P(better) {_cell(row[f'{t}_p_better'])}"
        )
    return out


def length_markdown(table: pd.DataFrame, alpha: float) -> str:
    head = (
        "| set | pretrained model | pretraining it. | whole | mask | zero-shot | floor | scratch, equal downstream "
        "| scratch, equal total | H1: whole − scratch (equal total) | start: whole − scratch (equal downstream) |\n"
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |\n"
    )
    body = ""
    for _, r in table.iterrows():
        model = f"{label('pretrain', r['pretrain'])}, {label('augment', r['augment']).lower()}"
        it = f"{int(r['pretrain_iterations']):,}" if _ok(r["pretrain_iterations"]) else "—"
        vals = " | ".join(
            _cell(r[c])
            for c in ("whole_db", "mask_db", "zeroshot_db", "floor_db")
            + ("baseline_equal_downstream_db", "baseline_equal_total_db")
        )
        body += f"| {label('downstream', r['downstream'])} | {model} | {it} | {vals} "
        body += f"| {_verdict(r, 'h1')} | {_verdict(r, 'start')} |\n"
    return (
        "## Figure 4: transfer against pretraining length\n\n"
        "![Figure 4](fig4_length.png)\n\n"
        "SI-SDR (dB) of models fine-tuned or probed from each pretraining checkpoint, beside the one "
        "from-scratch baseline scored at the fine-tune's budget (equal downstream iterations: is the "
        "pretrained start better than random weights?) and at the kept pretraining iterations + that "
        "budget (equal total iterations, the paper's H1). Each test: mean difference, the paper's "
        f"one-sided Wilcoxon p over excerpts / the p over independent units with their kind, the smallest p "
        "they can reach and the 95 % interval of the mean difference / with replicates, the recipe over "
        f"them (mean difference, 95 % t-interval, one-sided t-test p, share of replicates it wins; α = {alpha}). "
        "Values are means over replicates when the grid points were trained several times. The zero-shot "
        "probe measures whether the pretrained embedding already clusters the downstream sources; read "
        "it beside the fine-tuned curves, not in their place. Table: `table4_length.csv`.\n\n" + head + body
    )


def write_length(study_dir: Path, out: Path, downs: list[str], alpha: float = ALPHA) -> tuple[dict, str, list[str]]:
    """Figure 4, its table and its report section for the study in ``study_dir`` (nothing when the
    study ran no fine-tune or probe of the axis beside its end). Returns (paths, markdown, problems)."""
    runs, problems = scan_length(study_dir)
    rows = length_rows(runs, downs, alpha)
    if not rows or {r["pretrain_steps"] for r in rows} == {"end"}:
        return {}, "", problems
    table = pd.DataFrame(rows, columns=COLUMNS)
    numeric = [
        c
        for c in COLUMNS
        if c.endswith(("_db", "_iterations", "_p", "_p_units", "_n_units", "_low", "_high", "_n", "_replicates"))
        or c.endswith(("_min_p_units", "_p_recipe", "_p_better"))
    ]
    table[numeric] = table[numeric].apply(pd.to_numeric, errors="coerce")  # a column of None stays numeric
    out.mkdir(parents=True, exist_ok=True)
    paths = {"table4_csv": atomic_write_text(out / "table4_length.csv", table.to_csv(index=False))}
    paths["fig4"] = figure4(out / "fig4_length.png", table, downs)
    return paths, length_markdown(table, alpha), problems
