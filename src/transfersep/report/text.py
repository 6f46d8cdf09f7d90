"""report.md: its sections and their prose, Figures 1-4 in order (the tables in them: ``mdtables``)."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pandas as pd

from transfersep.report.header import StudyInfo, header_lines, options_for
from transfersep.report.mdtables import length_markdown, tests_markdown
from transfersep.report.numbers import num
from transfersep.report.replicates import has_replicates, recipe_markdown, replicates_markdown
from transfersep.report.results import Key, Run, describe_key, zeroshot_label
from transfersep.report.stats import MIN_UNITS_INTERVAL

PROBE_SCORING = (
    "**How the probe is scored**: a model pretrained with deep clustering (supervised or bootstrapped) "
    "is probed by k-means on its DC embeddings, as many clusters as the set has sources (method "
    "dc-kmeans); a MixIT model by its M separated outputs (mixit-grouping). Neither carries source "
    "names, so on each excerpt the clusters are matched to the sources by the assignment with the "
    "highest summed SI-SDR, and a MixIT model's outputs are grouped onto the sources (each output to "
    "one source, summed) by the assignment with the highest mean SI-SDR — the best the probe could "
    "score on that excerpt (an oracle assignment). Fine-tuned and from-scratch models are "
    "scored in their fixed output order, with no such choice, so the comparison favours the probe. "
    "An empty cluster is a silent estimate and scores as silence (the SI-SDR floor), not 0 dB. The "
    "floor beside it is the mixture itself used as every source's estimate: a probe at the floor "
    "separates nothing."
)


def probe_markdown(runs: dict[Key, Run]) -> str:
    """The zero-shot probes beside the mixture-as-estimate floor of their test set."""
    rows = [
        "| probe | method | downstream | probe SI-SDR (dB, best assignment per excerpt) | mixture as estimate (dB) | "
        "probe − mixture (dB) |",
        "|---|---|---|---:|---:|---:|",
    ]
    for key, r in sorted(runs.items(), key=lambda kv: kv[1].rel):
        if key.stage != "zeroshot":
            continue
        extra = r.result.get("extra") or {}
        floor, method = r.floor, extra.get("method", "dc-kmeans")
        gap = r.mean - floor if r.mean is not None and floor is not None else None
        d = key.downstream
        rows.append(f"| {r.rel} | {method} | {d} | {num(r.mean)} | {num(floor)} | {num(gap, '{:+.2f}')} |")
    return "\n".join(rows) + "\n"


TRAIN = ["transfersep", "train"]  # works from any folder, in a checkout or an installed package


def missing_markdown(
    missing: list[Key], options: list[str], options_for: Callable[[str, str], list[str]] | None = None
) -> list[str]:
    """The missing grid points, grouped into as few commands as possible (multiruns). Each command
    carries ``options_for(stage, downstream)`` (what the study's runs there were launched with), or
    ``options``; downstream sets launched with other options get commands of their own."""

    def opts(stage: str, downstream: str) -> tuple[str, ...]:
        return tuple(options_for(stage, downstream) if options_for else options)

    lines: list[str] = []
    base: dict[tuple, list[str]] = {}
    for d in sorted({k.downstream for k in missing if k.stage == "baseline"}):
        base.setdefault(opts("baseline", d), []).append(d)
    for o, ds in base.items():
        m = ["-m"] if len(ds) > 1 else []
        cmd = shlex.join([*TRAIN, *m, *o, "pretrain=none", "downstream=" + ",".join(ds)])
        lines.append(f"- from-scratch baseline × {', '.join(ds)}: `{cmd}`")
    groups: dict[tuple, list[str]] = {}
    for k in missing:
        if k.stage == "finetune":
            d = k.downstream
            groups.setdefault((k.pretraining, k.augment, k.finetune, opts("finetune", d)), []).append(d)
    merged: dict[tuple, list[str]] = {}  # (pretrain, augment, downstreams, options) -> modes
    for (p, a, f, o), ds in groups.items():
        merged.setdefault((p, a, tuple(ds), o), []).append(f)
    for (p, a, ds, o), fs in merged.items():
        m = ["-m"] if len(ds) > 1 or len(fs) > 1 else []
        grid = [*_pretraining_words([p]), f"augment={a}", "finetune=" + ",".join(fs), "downstream=" + ",".join(ds)]
        cmd = shlex.join([*TRAIN, *m, *o, *grid])
        lines.append(f"- fine-tune {p}-{a} × {', '.join(fs)} × {', '.join(ds)}: `{cmd}`")
    per_pair: dict[tuple, list[str]] = {}
    for k in missing:
        if k.stage == "zeroshot":
            per_pair.setdefault((k.pretraining, k.augment, opts("zeroshot", k.downstream)), []).append(k.downstream)
    zs: dict[tuple, list[str]] = {}  # (downstream sets, options) -> pretrainings lacking their probe there
    for (p, a, o), ds in per_pair.items():
        zs.setdefault((tuple(ds), o), []).append(f"{p}-{a}")
    for (ds, o), pas in zs.items():
        pre = sorted({pa.split("-", 1)[0] for pa in pas})
        aug = sorted({pa.split("-", 1)[1] for pa in pas})
        m = ["-m"] if len(ds) > 1 or len(pre) > 1 or len(aug) > 1 else []
        grid = [*_pretraining_words(pre), "augment=" + ",".join(aug), "finetune=zeroshot"]
        cmd = shlex.join([*TRAIN, *m, *o, *grid, "downstream=" + ",".join(ds)])
        lines.append(f"- {zeroshot_label()} × {', '.join(ds)} of pretraining {', '.join(pas)}: `{cmd}`")
    return lines


def _pretraining_words(names: list[str]) -> list[str]:
    """The overrides of pretrainings named as records name them (``slakh_mixit``: ``pretrain=slakh
    objective=mixit``); ``objective=`` only where one is not dc."""
    from transfersep.model.objectives import split_name

    parts = [split_name(n) for n in names]
    corpora, objectives = sorted({c for c, _ in parts}), sorted({o for _, o in parts})
    return ["pretrain=" + ",".join(corpora)] + (["objective=" + ",".join(objectives)] if objectives != ["dc"] else [])


def _claims(runs: dict[Key, Run], alpha: float) -> str:
    """What kind of claim each column supports, said once at the top."""
    models = (
        "**What each column is about.** The paper's column and the independent column compare the two "
        "trained models of replicate 0 (seed 0, fold 0) on this test audio: training noise (the seed, the "
        "split) is not in them, so they say nothing about the recipes that produced the models. "
    )
    if not has_replicates(runs):
        return models + (
            "Every grid point of this study was trained once: every reading below is about one trained model. "
            "A claim about a recipe (pretraining helps, less pretraining helps more) needs replicates: "
            "`transfersep study seed=0,1,2` (and `fold=0,1,2` for sets with few pieces).\n"
        )
    return models + (
        "The recipe tables below each family compare the recipes over every replicate both grid points have "
        f"(one unit per fold × seed; one-sided t-test at p < {alpha:g}, Nadeau–Bengio corrected when folds "
        "share training pieces; P(x better) is the share of units where x beats y). With one fold the claim "
        "is about these test pieces; over folds, about pieces like them.\n"
    )


def markdown_report(
    *,
    study_dir: Path,
    info: StudyInfo,
    alpha: float,
    downs: list[str],
    runs: dict[Key, Run],
    tests: pd.DataFrame,
    table2_md: str,
    expected: list[Key],
    missing: list[Key],
    problems: list[str],
    created: str,
    full_grid: bool = False,
    length: pd.DataFrame | None = None,
) -> str:
    n_flag = int(tests["paper_only"].fillna(False).astype(bool).sum()) if len(tests) else 0
    grid = (
        "the whole grid of sweeps/grid.yaml" if full_grid else "what the study launched (`--full-grid`: the whole grid)"
    )
    s = [
        "# Transfer-learning study report\n",
        *(f"{line}  " for line in header_lines(info)),
        f"Generated {created}.\n",
        f"**Significance** — paper's column: one-sided Wilcoxon signed-rank test on paired per-excerpt "
        f"SI-SDR (mean over non-silent sources) over every test excerpt, p < {alpha:g}, no "
        "multiple-comparison correction. Independent columns: the paired differences averaged within "
        "each independent unit (whole test tracks — a claim about pieces like these — or, when a set has "
        "fewer than 5 tracks, time blocks that share no audio, merged into super-blocks three measured "
        "correlation times long so that a drift along the piece does not count as evidence — a claim about "
        "these pieces; excerpts straddling two blocks are left out), the number of units, the "
        "mean and median over units with their 95 % intervals (Student t; order statistics) from "
        f"{MIN_UNITS_INTERVAL} units on (fewer: too few for an interval), and the exact one-sided "
        "signed-rank test over the units with the smallest p that many units can give (2⁻ⁿ: "
        '"cannot reach α" below 10 units at .001). '
        f"{n_flag} comparison(s) are significant only under the paper's test (⚠).\n",
        _claims(runs, alpha),
        f"{len(runs)} evaluated run(s); {len(missing)} of {len(expected)} expected grid point(s) missing "
        f"(expected grid: {grid}; downstream sets: {', '.join(downs) or 'none found'}).\n",
    ]
    if problems:
        s.append("## Problems\n\n" + "\n".join(f"- {p}" for p in problems) + "\n")
    zs = any(k.stage == "zeroshot" for k in runs)
    zs_label = zeroshot_label()
    s += [
        "## Figure 1 — pretraining vs. no pretraining (H1)\n",
        "![Figure 1](fig1_pretraining.png)\n",
        "Whole-models fine-tuned from pretraining without augmentation against the from-scratch "
        "baseline"
        + (f" and the {zs_label} probe of each pretrained model (hatched)" if zs else "")
        + "; x better than y is tested. Error bars: 95 % t-interval of each mean over its independent "
        f"test units (none from fewer than {MIN_UNITS_INTERVAL} units)"
        + ("; dashed line: the mixture itself as every source's estimate (the floor)" if zs else "")
        + ".\n",
        tests_markdown(tests, "H1"),
        recipe_markdown(tests, "H1", alpha),
    ]
    if zs:
        s += [
            "### Fine-tuned whole-model vs. zero-shot (Z)\n",
            f"Does fine-tuning improve on the pretrained model used without any downstream training "
            f"({zs_label})? {PROBE_SCORING}\n",
            probe_markdown(runs),
            tests_markdown(tests, "Z"),
            recipe_markdown(tests, "Z", alpha),
        ]
    if tests.family.str.startswith("S").any():
        s += [
            "### Self-supervised vs. supervised pretraining (S)\n",
            "Whole-models fine-tuned from a pretraining on the corpus's mixtures alone (MixIT; deep "
            "clustering on labels bootstrapped from primitive grouping cues) against the one fine-tuned "
            "from the supervised deep-clustering pretraining on the same audio with its stems; x better "
            "than y is tested. Their bars against the baseline are in Figure 1 (labelled self-supervised).\n",
            tests_markdown(tests, "S"),
            recipe_markdown(tests, "S", alpha),
        ]
    s += [
        "## Figure 2 — augmentation during pretraining (H2)\n",
        "![Figure 2](fig2_augmentation.png)\n",
        "Whole-models: each augmentation against no augmentation, same corpus.\n",
        tests_markdown(tests, "H2"),
        recipe_markdown(tests, "H2", alpha),
        "## Figure 3 — learning curves\n",
        "![Figure 3](fig3_curves.png)\n",
        "Test SI-SDR on the curve subset (the first excerpts of the fixed test list) every "
        "`every_n_steps` optimizer steps. Each run is drawn against its own step count: a "
        "fine-tune curve starts at 0 with the pretrained model (its pretraining steps are "
        "not added), the from-scratch baseline runs its full budget. Solid: whole-model, dashed: "
        "mask-model, both without augmentation"
        + (f"; diamonds at step 0: {zs_label} on the whole test list" if zs else "")
        + ".\n",
        "## Table 2 — mask-model minus whole-model (R2)\n",
        "![Table 2](table2_mask_minus_whole.png)\n",
        table2_md,
        tests_markdown(tests, "R2"),
        recipe_markdown(tests, "R2", alpha),
        *(
            [
                "## Replicates\n",
                "Each grid point over its replicates (seeds × folds):\n",
                replicates_markdown(runs, describe_key),
            ]
            if has_replicates(runs)
            else []
        ),
        "## Runs\n",
        "| run directory | model | SI-SDR mean (dB) | median | n | excluded pairs |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for key, r in sorted(runs.items(), key=lambda kv: kv[1].rel):
        o = r.result.get("overall") or {}
        s.append(
            f"| {r.rel} | {describe_key(key)} | {num(o.get('mean'))} | {num(o.get('median'))} | "
            f"{o.get('n', '—')} | {r.result.get('n_excluded', '—')} |"
        )
    s.append("\n## Missing grid points\n")
    if missing:
        s.append(
            "Grid points of the study without an evaluated run, with the commands that produce them "
            "(every option the study's runs of that downstream set were launched with included; `transfersep train` "
            "works from any folder):\n"
        )
        s += missing_markdown(missing, info.options, partial(options_for, info))
    else:
        s.append("None: the study grid is complete.")
    md = "\n".join(s) + "\n"
    return md if length is None else md.rstrip("\n") + "\n\n" + length_section(length, alpha)


def length_section(table: pd.DataFrame, alpha: float) -> str:
    """Figure 4's section of report.md (``length.length_table``)."""
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
        "it beside the fine-tuned curves, not in their place. Table: `table4_length.csv`.\n\n" + length_markdown(table)
    )
