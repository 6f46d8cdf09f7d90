"""`make demo`: the whole study, small, on CPU, on the demo corpus rendered from real scores.

    python -m transfersep.demo.run [--data demo_data] [--runs runs] [--size demo|test]

1. renders the corpus once (cached) into miniature copies of the real layouts;
2. pretrains on the Slakh-style corpus (DC only);
3. probes the pretrained model zero-shot on each downstream set (k-means on its DC embeddings);
4. fine-tunes whole and mask models on Bach10- and Dagstuhl-style sets (more with --downstream);
   3 and 4 at each pretraining length of the grid (pretrain_steps: the checkpoints pretraining
   kept at 1/4 and 1/2 of its budget, and its end);
5. trains from-scratch baselines with pretraining + fine-tuning iterations, scored also at the
   fine-tuning budget and at each kept pretraining step + that budget;
6. writes the report (Figures 1-4, Table 2, Wilcoxon tests) and prints where it is.
Every stage is an ordinary `python train.py -m +sweeps=<stage> ...` multirun of the study's grid
(sweeps/grid.yaml: its stages, their order and what each waits for) narrowed to the demo's sets,
so the demo runs exactly the path a researcher's study takes; finished runs are skipped when the
demo is run again. The baselines do not need the pretrained model, so they run beside
pretraining and fine-tuning (``--jobs``).
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from transfersep.study.grid import load_grid, overrides_for
from transfersep.study.launch import train_argv


@dataclass
class Stage:
    """One ``train.py -m`` multirun (or the report) of the demo, started once ``after`` finished."""

    name: str
    cmd: list[str]
    after: tuple[str, ...] = ()


def study_stages(train: list[str], narrow: list[str], report: list[str], downstreams: list[str]) -> list[Stage]:
    """The grid's stages as demo stages, then the report after all of them.

    ``train`` is the multirun command with the options every run shares, ``narrow`` the grid keys
    that narrow the demo's study (each stage takes those it sweeps). A stage waits for the stage
    the grid says it waits for. A stage that waits for nothing and that nothing waits for (the
    baselines) runs as one stage per downstream set (and fold), and these lanes are listed right after the
    stages without a wait: while pretraining runs the free core takes them (the longest lane) and
    the lanes end close together.
    """
    grid = load_grid()
    waited = {st.waits_for for st in grid.stages.values()}
    free, waiting = [], []
    for st in grid.stages.values():
        cmd = [*train, f"+sweeps={st.name}", *(o for o in narrow if o in overrides_for(st.name, narrow))]
        after = (st.waits_for,) if st.waits_for else ()
        if st.waits_for or st.name in waited or "downstream" not in st.sweeps:
            (waiting if st.waits_for else free).append(Stage(st.name, cmd, after))
            continue
        lanes = [o for o in cmd if not o.startswith(("downstream=", "fold="))]
        folds = next((o.split("=", 1)[1].split(",") for o in cmd if o.startswith("fold=")), [])
        free += [
            Stage(f"{st.name}-{d}" + (f"-fold{f}" if len(folds) > 1 else ""), [*lanes, f"downstream={d}", f"fold={f}"])
            for d in downstreams
            for f in (folds or ["0"])
        ]
    stages = free + waiting
    return [*stages, Stage("report", report, after=tuple(s.name for s in stages))]


def run_stages(stages: list[Stage], logs: Path, jobs: int, threads: int) -> None:
    """Run the stages, at most ``jobs`` at a time, each with ``threads`` CPU threads.

    Why concurrent: the tiny model's step does not scale past one or two threads (its GEMMs are
    small), so on two cores the independent lanes (pretrain -> fine-tune, and the from-scratch
    baselines) finish ~1.6x sooner side by side than one after the other. Each stage's output goes
    to ``logs/<name>.log``; a failing stage stops the others and its log's tail is printed.
    Results do not depend on the schedule: every run is seeded and single-process.
    """
    logs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    pending, running, done = list(stages), {}, set()
    while pending or running:
        for st in [st for st in pending if set(st.after) <= done][: max(0, jobs - len(running))]:
            pending.remove(st)
            log = logs / f"{st.name}.log"
            print(f"[demo] start  {st.name}: {shlex.join(st.cmd)}\n       log: {log}", flush=True)
            f = open(log, "w")
            running[st.name] = (
                subprocess.Popen(st.cmd, env=env, stdout=f, stderr=subprocess.STDOUT),
                f,
                time.time(),
                log,
            )
        if not running:
            raise SystemExit(f"demo: stages {[s.name for s in pending]} wait on stages that never ran")
        time.sleep(0.5)
        for name, (p, f, t0, log) in list(running.items()):
            if p.poll() is None:
                continue
            f.close()
            del running[name]
            if p.returncode != 0:
                for other, *_ in running.values():
                    other.terminate()  # train.py checkpoints at its next step and exits
                for other, *_ in running.values():
                    try:
                        other.wait(timeout=120)
                    except subprocess.TimeoutExpired:
                        other.kill()
                tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-40:])
                raise SystemExit(f"{tail}\ndemo stage {name!r} failed (exit {p.returncode}); full log: {log}")
            done.add(name)
            print(f"[demo] done   {name} ({time.time() - t0:.0f} s)", flush=True)


def corpus_of(pretrain: str) -> list[str]:
    """The demo corpora a ``pretrain=`` value reads (``librimix_slakh``: the LibriMix- and Slakh-style
    corpora)."""
    from transfersep.data.combined import COMBINED
    from transfersep.run.config import compose

    name = str(compose([f"pretrain={pretrain}"]).pretrain.dataset.name)
    return list(COMBINED.get(name, (name,)))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="demo_data", help="where the demo corpus is rendered (cached)")
    ap.add_argument("--runs", default="runs", help="runs directory (the study is <runs>/<study>)")
    ap.add_argument("--study", default="demo")
    ap.add_argument("--size", default="demo", choices=["demo", "test"], help="corpus size")
    ap.add_argument(
        "--pretrain",
        default="slakh",
        help="pretrain= values (comma list; librimix: speech)",
    )
    ap.add_argument(
        "--objective",
        default="dc",
        help="objective= values (comma list; mixit,bootstrap: self-supervised, on the corpus's mixtures)",
    )
    ap.add_argument("--downstream", default="bach10,dagstuhl", help="downstream sets (comma list)")
    ap.add_argument("--seed", type=int, default=0, help="the corpus's seed (the rendered audio)")
    ap.add_argument("--seeds", default="0", help="replicates: the runs' seed= values (comma list, e.g. 0,1,2)")
    ap.add_argument("--folds", default="0", help="the downstream sets' fold= values (comma list; 0: the paper's split)")
    ap.add_argument("--finetune", default=None, help="fine-tune modes (comma list; default: the grid's)")
    ap.add_argument("--pretrain-steps", default=None, help="pretrain_steps values (comma list; default: the grid's)")
    ap.add_argument("--jobs", type=int, default=0, help="stages run side by side (default: min(2, cores))")
    ap.add_argument("overrides", nargs="*", help="extra Hydra overrides for every run (e.g. budget.pretrain=50)")
    a = ap.parse_args(argv)

    from transfersep.demo.corpus import build_corpus
    from transfersep.demo.render import RenderToolMissing

    data, runs = Path(a.data).resolve(), Path(a.runs).resolve()
    sets = sorted({*(c for p in a.pretrain.split(",") for c in corpus_of(p)), *a.downstream.split(",")})
    t0 = time.time()
    try:
        build_corpus(data, size=a.size, seed=a.seed, only=sets)
    except RenderToolMissing as e:
        raise SystemExit(f"error: {e}") from None
    print(f"demo corpus ready in {data} ({time.time() - t0:.0f} s)", flush=True)

    os.environ.setdefault("WANDB_MODE", "offline")
    common = [
        "experiment=demo",
        f"paths.data_dir={data}",
        f"paths.runs_dir={runs}",
        f"study={a.study}",
        *a.overrides,
    ]
    train = [*train_argv(), "-m", *common]
    report = runs / a.study / "report"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    jobs = a.jobs or min(2, cores)
    narrow = [
        f"pretrain={a.pretrain}",
        f"objective={a.objective}",
        "augment=none",
        f"downstream={a.downstream}",
        f"seed={a.seeds}",
    ]
    narrow += [f"fold={a.folds}"] + [f"finetune={a.finetune}"] * bool(a.finetune)
    narrow += [f"pretrain_steps={a.pretrain_steps}"] * bool(a.pretrain_steps)
    report_cmd = [sys.executable, "-m", "transfersep.report.build", str(runs / a.study), "--out", str(report)]
    stages = study_stages(train, narrow, report_cmd, a.downstream.split(","))
    run_stages(stages, runs / a.study / "logs", jobs, max(1, cores // jobs))
    print(f"\nThe demo finished in {time.time() - t0:.0f} s. Report: {report / 'report.md'}", flush=True)


if __name__ == "__main__":
    main()
