"""What a study's report is made of: study, experiment, options, and what the test data were.

Read from each evaluated run directory:

- ``.hydra/overrides.yaml`` (the command-line overrides of the run, written by Hydra) and
  ``.hydra/hydra.yaml`` (``hydra.runtime.choices.experiment``); runs without them (written by
  hand, or by a tool that does not go through Hydra) contribute only ``result.json``'s
  ``extra.study`` / ``extra.seed``;
- ``result.json["test_data"]``: whether the test audio was generated (``data.generated=true``),
  and the folder holding every test file. A folder at or above it with ``.transfersep-demo.json``
  is the demo corpus (rendered scores, ``transfersep.demo.corpus``); otherwise a real dataset.

**Study options** are the overrides every run of the study shares, except the grid keys (pretrain,
augment, finetune, downstream), Hydra's own (``hydra.*``, ``hydra/…``, ``+sweeps=…``) and one-off
switches (rerun, dry_run): appended to a suggested command they reproduce the study's setting
(experiment, paths, data, model, study, seed, budgets …). A missing run's command carries more:
every option the study's runs of its downstream set were launched with (``options_for``).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from transfersep.files import RUN_CONFIG
from transfersep.report.results import Key, Run
from transfersep.run.point import SWEPT_KEYS

DEMO_MARKER = ".transfersep-demo.json"
ONE_OFF = ("rerun", "dry_run", "init_from")


@dataclass
class DataSource:
    kind: str  # "generated" | "demo corpus" | "real dataset" | "unknown"
    where: str | None = None  # the demo corpus folder, or the folder of the test files


@dataclass
class StudyInfo:
    study_dir: Path
    studies: list[str] = field(default_factory=list)  # study names recorded by the runs
    experiments: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)  # overrides shared by every run
    data: dict[str, DataSource] = field(default_factory=dict)  # downstream -> what its test data were
    pretrain_data: dict[str, DataSource] = field(default_factory=dict)  # pretraining corpus -> what it was
    # (stage, downstream, carried overrides) of every run with a Hydra record: what shaped each run
    launched_with: list[tuple[str, str, list[str]]] = field(default_factory=list)


def _yaml(path: Path):
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None


def _carried(override: str) -> bool:
    key = override.split("=", 1)[0].lstrip("+~")
    return not (
        key in SWEPT_KEYS
        or key in ONE_OFF
        or key.startswith(("hydra.", "hydra/"))
        or key == "hydra"
        or key == "sweeps"
        or "=" not in override
    )


def demo_corpus_of(path: str | Path | None) -> Path | None:
    """The demo corpus folder at or above ``path`` (the one holding its marker), or None."""
    if not path:
        return None
    p = Path(path)
    for d in (p, *p.parents):
        if (d / DEMO_MARKER).is_file():
            return d
    return None


def _data_source(run: Run) -> DataSource:
    td = run.result.get("test_data")
    if isinstance(td, dict):
        if td.get("generated"):
            return DataSource("generated")
        demo = demo_corpus_of(td.get("files_root"))
        if demo is not None:
            return DataSource("demo corpus", str(demo))
        return DataSource("real dataset" if td.get("files_root") else "unknown", td.get("files_root"))
    return DataSource("unknown")


def _pretrain_source(study_dir: Path, run: Run) -> tuple[str, DataSource] | None:
    """What the pretraining a fine-tune or probe started from was trained on, from that run's recorded
    config (``run_config.json``); None where the parent is no run of the study (a model file)."""
    parent = (run.result.get("extra") or {}).get("parent")
    if not isinstance(parent, dict) or parent.get("kind") != "run" or not parent.get("subdir"):
        return None
    try:
        config = json.loads((Path(study_dir) / str(parent["subdir"]) / RUN_CONFIG).read_text())["config"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    corpus = str((parent.get("grid_point") or {}).get("pretrain") or run.key.pretraining)
    if (config.get("data") or {}).get("generated"):
        return corpus, DataSource("generated")
    dataset = (config.get("pretrain") or {}).get("dataset") or {}
    roots = [str(v) for k, v in dataset.items() if k == "root" or str(k).endswith("_root")]
    demo = next((d for d in map(demo_corpus_of, roots) if d is not None), None)
    if demo is not None:
        return corpus, DataSource("demo corpus", str(demo))
    return corpus, DataSource("real dataset" if roots else "unknown", roots[0] if roots else None)


def data_kinds(info: StudyInfo) -> dict[tuple[str, str], str]:
    """(axis, value) -> "generated" | "demo corpus" for every corpus of the study that was not the real
    dataset: what ``results.label`` adds to its name."""
    out = {("downstream", d): src.kind for d, src in info.data.items()}
    out.update({("pretrain", c): src.kind for c, src in info.pretrain_data.items()})
    return {k: v for k, v in out.items() if v in ("generated", "demo corpus")}


def study_info(study_dir: Path, runs: dict[Key, Run]) -> StudyInfo:
    info = StudyInfo(Path(study_dir))
    shared: Counter = Counter()
    order: dict[str, None] = {}  # first-seen order of the overrides, as the user wrote them
    with_hydra = 0
    studies, experiments = set(), set()
    for run in runs.values():
        extra = run.result.get("extra") or {}
        if extra.get("study"):
            studies.add(str(extra["study"]))
        overrides = _yaml(run.dir / ".hydra" / "overrides.yaml")
        if isinstance(overrides, list):
            with_hydra += 1
            mine = [str(o) for o in overrides if _carried(str(o))]
            info.launched_with.append((run.key.stage, run.key.downstream, mine))
            shared.update(set(mine))
            order.update(dict.fromkeys(mine))
        hy = _yaml(run.dir / ".hydra" / "hydra.yaml")
        choice = (
            (((hy or {}).get("hydra") or {}).get("runtime") or {}).get("choices", {}).get("experiment")
            if isinstance(hy, dict)
            else None
        )
        if hy is not None:
            experiments.add(str(choice) if choice else "paper (defaults)")
        d = run.key.downstream
        src = _data_source(run)
        if d not in info.data or info.data[d].kind == "unknown":
            info.data[d] = src
        pre = _pretrain_source(study_dir, run)
        if pre is not None and (pre[0] not in info.pretrain_data or info.pretrain_data[pre[0]].kind == "unknown"):
            info.pretrain_data[pre[0]] = pre[1]
    info.studies, info.experiments = sorted(studies), sorted(experiments)
    if with_hydra:
        info.options = [o for o in order if shared[o] == with_hydra]
    else:  # no Hydra record: what result.json says
        seeds = {(r.result.get("extra") or {}).get("seed") for r in runs.values()} - {None}
        info.options = [f"study={s}" for s in info.studies[:1]] + [
            f"seed={s}" for s in sorted(seeds)[:1] if len(seeds) == 1
        ]
    return info


def _key_of(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def options_for(info: StudyInfo, stage: str, downstream: str) -> list[str]:
    """The overrides a command for a missing run of ``stage`` on ``downstream`` carries: every option
    the study's runs of that downstream set were launched with (its data paths, the sources and
    patterns of a stem folder, the budgets), a key that differs between them taken from the runs of
    the same stage first, then the most common; the study's shared options for a set none of its
    runs used."""
    groups = [
        [ovs for s, d, ovs in info.launched_with if s == stage and d == downstream],
        [ovs for s, d, ovs in info.launched_with if d == downstream],
    ]
    chosen: dict[str, str] = {}
    for group in groups:
        for o, _ in Counter(o for ovs in group for o in ovs).most_common():
            chosen.setdefault(_key_of(o), o)
    out = [chosen.pop(_key_of(o), o) for o in info.options]
    return out + list(chosen.values())


_WHAT = {
    "generated": "generated tones and noise (`data.generated=true`), not music",
    "demo corpus": "the demo corpus (scores rendered with FluidSynth into the dataset's layout)",
    "real dataset": "the real dataset",
    "unknown": "not recorded",
}


def header_lines(info: StudyInfo) -> list[str]:
    """The report's first lines: what the numbers are made of."""
    name = ", ".join(info.studies) or info.study_dir.name
    lines = [
        f"**Study** `{name}` in `{info.study_dir}` · **experiment** {', '.join(info.experiments) or 'not recorded'}"
    ]
    if info.options:
        lines.append("**Options shared by every run**: " + " ".join(f"`{o}`" for o in info.options))
    for d, src in info.data.items():
        where = ""
        if src.where:
            where = f" at `{src.where}`" if src.kind == "demo corpus" else f" (test files under `{src.where}`)"
        what = _WHAT[src.kind]
        lines.append(f"**Test data of {d}**: {what}{where}")
    for c, src in info.pretrain_data.items():
        if src.kind in ("generated", "demo corpus"):
            where = f" at `{src.where}`" if src.where else ""
            lines.append(f"**Pretraining data of {c}**: {_WHAT[src.kind]}{where}")
    kinds = {s.kind for s in [*info.data.values(), *info.pretrain_data.values()]}
    if kinds & {"generated", "demo corpus"}:
        lines.append("**These are not results on the real datasets**: they check the pipeline, not the paper's claims.")
    return lines
