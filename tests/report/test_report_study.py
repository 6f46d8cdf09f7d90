"""What the report says about itself: header, the study's own grid and options, zero-shot runs,
score tables without excerpt origins, and folders holding several studies (hand-made run directories)."""

from __future__ import annotations

import json
import shlex
from functools import partial
from pathlib import Path

import pandas as pd
import pytest
import yaml
from scipy import stats

from eval_synth import (
    AUGMENTS,
    CORPORA,
    DOWNS,
    FLOOR_DB,
    E,
    all_keys,
    excerpt_mean,
    overall_mean,
    point_of,
    run_scores,
    write_run,
)
from transfersep.report import figures
from transfersep.report.build import main, write_report

DEMO_OPTS = ["experiment=demo", "paths.data_dir=/srv/demo data", "paths.runs_dir=/srv/runs", "study=demo", "seed=0"]


def hydra_record(run: Path, key: tuple, extra: list[str] = ()) -> None:
    """The .hydra/ files Hydra writes in a run directory of `train.py -m ...`."""
    grid = (
        ["pretrain=none", "augment=none", "finetune=whole", f"downstream={key[1]}"]
        if key[0] == "baseline"
        else [f"pretrain={key[1]}", f"augment={key[2]}", f"finetune={key[3]}", f"downstream={key[4]}"]
    )
    (run / ".hydra").mkdir()
    (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([*DEMO_OPTS, *extra, *grid]))
    (run / ".hydra" / "hydra.yaml").write_text(
        yaml.safe_dump({"hydra": {"runtime": {"choices": {"experiment": "demo", "model": "tiny"}, "cwd": "/srv"}}})
    )


def demo_study(root: Path, corpus: Path, drop: tuple = ()) -> list[tuple]:
    """The demo's shape: pretraining slakh-none, whole and mask fine-tunes and baselines on bach10 and
    dagstuhl, test files inside a demo corpus folder."""
    corpus.mkdir(parents=True, exist_ok=True)
    (corpus / ".transfersep-demo.json").write_text("{}")
    keys = [
        k
        for d in DOWNS
        for k in [("baseline", d), ("finetune", "slakh", "none", "whole", d), ("finetune", "slakh", "none", "mask", d)]
        if k not in drop
    ]
    for i, k in enumerate(keys):
        run = write_run(root, k, study="demo")
        hydra_record(run, k, ["hydra/launcher=slurm", "+sweeps=finetune"] if i % 2 else [])
        res = json.loads((run / "result.json").read_text())
        res["test_data"] = {"generated": False, "files_root": str(corpus / "Bach10" / "10-NunBitten"), "tracks": 1}
        res["extra"]["study"] = "demo"
        (run / "result.json").write_text(json.dumps(res))
    pre = root / "demo" / "pretrain" / "slakh-none"
    pre.mkdir(parents=True)
    (pre / "status.json").write_text(
        json.dumps(
            {
                "state": "finished",
                "grid_point": {
                    "stage": "pretrain",
                    "pretrain": "slakh",
                    "augment": "none",
                    "finetune": "whole",
                    "downstream": "none",
                },
            }
        )
    )
    return keys


def test_partial_demo_study_reports_what_it_ran(tmp_path):
    drop = (("finetune", "slakh", "none", "mask", "dagstuhl"),)
    demo_study(tmp_path / "runs", tmp_path / "demo data", drop)
    out = tmp_path / "out"
    assert main([str(tmp_path / "runs" / "demo"), "--out", str(out)]) == 0
    md = (out / "report.md").read_text()
    head = md.split("## Figure 1")[0]
    assert "**Study** `demo`" in head and "**experiment** demo" in head
    assert "`experiment=demo` `'paths.data_dir=/srv/demo data'`" not in head  # options are shown unquoted
    assert "`paths.data_dir=/srv/demo data`" in head and "hydra/launcher" not in head and "sweeps" not in head
    assert (
        f"the demo corpus (scores rendered with FluidSynth into the dataset's layout) at `{tmp_path / 'demo data'}`"
        in head
        and "**These are not results on the real datasets**" in head
    )
    assert "1 of 6 expected grid point(s) missing" in head
    missing = md.split("## Missing grid points")[1]
    assert missing.count("\n- ") == 1
    assert (
        "`transfersep train experiment=demo 'paths.data_dir=/srv/demo data' paths.runs_dir=/srv/runs study=demo "
        "pretrain=slakh augment=none finetune=mask downstream=dagstuhl`"
    ) in missing
    tests = pd.read_csv(out / "tests.csv")
    assert sorted(tests.family.str[:2].unique()) == ["H1", "R2"]  # no augmentation pretrained: no H2 rows
    assert set(tests.x.str.split("/").str[1].str.split("-").str[0]) == {"slakh"}  # no musdb/both rows
    assert len(tests) == 4 and tests[tests.x == "finetune/slakh-none-mask-dagstuhl"].note.str.contains("missing").all()
    t2 = pd.read_csv(out / "table2_mask_minus_whole.csv")
    assert list(zip(t2.augment, t2.pretrain)) == [("none", "slakh")] * 2
    assert "| No augmentation | Slakh | -3.00 | absent |" in md
    assert "No comparison of this kind in the study's grid." in md.split("## Figure 2")[1].split("## Figure 3")[0]


def test_absent_grid_points_are_labelled_not_left_as_empty_axes(tmp_path, monkeypatch):
    demo_study(tmp_path / "runs", tmp_path / "corpus", drop=(("baseline", "bach10"),))
    seen = {}
    for name in ("figure1", "figure2", "note_figure"):
        real = getattr(figures, name)
        monkeypatch.setattr(
            figures,
            name,
            lambda *a, _real=real, _n=name, **k: seen.setdefault(_n, []).append(a) or _real(*a, **k),
        )
    write_report(tmp_path / "runs", tmp_path / "out")
    titles = [a[1] for a in seen["note_figure"]]
    assert titles == ["Effect of augmentation during pretraining"]  # Figure 2 says why it is absent
    assert "absent" in seen["note_figure"][0][2]
    vals = seen["figure1"][0][4]
    assert vals[("bach10", "none")] is None and vals[("dagstuhl", "none")] == pytest.approx(
        overall_mean(("baseline", "dagstuhl"))
    )
    assert list(seen["figure1"][0][2]) == ["none", "slakh"]  # conditions: only what the study ran


def test_zero_shot_runs_are_their_own_kind(tmp_path, monkeypatch):
    root = tmp_path / "runs"
    for k in all_keys():
        write_run(root, k)
    zs = [("zeroshot", c, "none", d) for c in ("musdb", "slakh") for d in DOWNS]
    for k in zs:
        write_run(root, k)
    captured = {}
    real1, real3 = figures.figure1, figures.figure3
    monkeypatch.setattr(figures, "figure1", lambda *a, **k: captured.setdefault("f1", a) and real1(*a, **k))
    monkeypatch.setattr(figures, "figure3", lambda *a, **k: captured.setdefault("f3", a) and real3(*a, **k))
    out = tmp_path / "out"
    paths = write_report(root, out)
    # the study has zero-shot runs: a probe is expected per pretraining pair and downstream set
    assert sorted(k.subdir for k in paths["missing"] if k.stage == "zeroshot") == sorted(
        f"zeroshot/{c}-{a}-{d}"
        for c in CORPORA
        for a in AUGMENTS
        for d in DOWNS
        if (c, a) not in {("musdb", "none"), ("slakh", "none")}
    )
    assert not [k for k in paths["missing"] if k.stage != "zeroshot"]
    tests = pd.read_csv(out / "tests.csv")
    z = tests[tests.family.str.startswith("Z")]
    assert len(z) == 24 and z.note.str.startswith("missing run: zeroshot/").sum() == 20
    z = z[~z.note.fillna("").str.startswith("missing run")]
    assert len(z) == 4
    for _, r in z.iterrows():
        x, y = excerpt_mean(run_scores(key_of(r.x))), excerpt_mean(run_scores(key_of(r.y)))
        assert r.y.startswith("zeroshot/") and r.x.startswith("finetune/") and r.x.endswith(r.y.split("-")[-1])
        assert r.p == pytest.approx(stats.wilcoxon(x, y, alternative="greater").pvalue)
        assert r.diff_db == pytest.approx(x.mean() - y.mean()) and r.n_units in (6, 30)
    summ = pd.read_csv(out / "summary.csv")
    row = summ[summ.run == "zeroshot/musdb-none-bach10"].iloc[0]
    assert row.stage == "zeroshot" and row.model == "MUSDB, no augmentation, zero-shot (no fine-tuning) → Bach10"
    md = (out / "report.md").read_text()
    assert "### Fine-tuned whole-model vs. zero-shot (Z)" in md
    z_md = md.split("### Fine-tuned whole-model vs. zero-shot (Z)")[1].split("## Figure 2")[0]
    assert z_md.count("| finetune/") == 4  # rows waiting for a missing probe are not repeated here
    assert "20 more comparison(s) of this kind wait for a missing run" in z_md
    assert (
        "| zeroshot/slakh-none-dagstuhl | Slakh, no augmentation, zero-shot (no fine-tuning) → Dagstuhl ChoirSet |"
        in md
    )
    f1 = captured["f1"]
    assert list(f1[2]) == ["none", "musdb", "slakh", "both", "zs:musdb", "zs:slakh"]
    assert f1[4][("bach10", "zs:slakh")] == pytest.approx(overall_mean(("zeroshot", "slakh", "none", "bach10")))
    # stars: bach10's 6 pieces cannot confirm what the paper's test finds; dagstuhl's 30 takes can
    assert f1[5][("bach10", "musdb")] == "paper" and f1[5][("dagstuhl", "musdb")] is True
    assert f1[5][("bach10", "both")] is False
    centre, lo, hi = f1[7][("bach10", "zs:slakh")]  # 6 pieces: an interval, around the mean over pieces
    pieces = excerpt_mean(run_scores(("zeroshot", "slakh", "none", "bach10"))).reshape(6, 5).mean(1)
    assert centre == pytest.approx(pieces.mean()) and lo < centre < hi
    assert f1[8] == {"bach10": FLOOR_DB, "dagstuhl": FLOOR_DB}  # the floor beside the probe
    # the probe table: how it is scored, the probe beside the floor
    assert "best assignment per excerpt" in z_md and "fixed output order" in z_md
    slakh = overall_mean(("zeroshot", "slakh", "none", "bach10"))
    row = (
        f"| zeroshot/slakh-none-bach10 | dc-kmeans | bach10 | {slakh:.2f} | {FLOOR_DB:.2f} | {slakh - FLOOR_DB:+.2f} |"
    )
    assert row in z_md
    markers = captured["f3"][3]["Bach10"]
    assert [(m[0], m[1]) for m in markers] == [
        ("MUSDB, zero-shot (no fine-tuning)", 0),
        ("Slakh, zero-shot (no fine-tuning)", 0),
    ]
    assert markers[1][2] == pytest.approx(overall_mean(("zeroshot", "slakh", "none", "bach10")))


def key_of(name: str) -> tuple:
    stage, rest = name.split("/")
    return (stage, *rest.split("-"))


def test_scores_without_origins_keep_the_papers_column_only(study, tmp_path):
    out = tmp_path / "out"
    paths = write_report(study(origins=False), out)
    tests = pd.read_csv(out / "tests.csv")
    assert tests.p.notna().all() and tests.units.isna().all() and tests.p_units.isna().all()
    assert tests.note.str.contains("no units").all() and not tests.paper_only.any()
    blind = [p for p in paths["problems"] if "without the track/start_s/seconds" in p]
    assert len(blind) == 1 and len(paths["problems"]) == 1  # said once, not per run
    line = next(
        ln
        for ln in (out / "report.md").read_text().splitlines()
        if ln.startswith("| bach10 | finetune/musdb-none-whole-bach10 | baseline/bach10 |")
    )
    assert "| **yes** | — | — | — | — | — | — | scores.csv has no track/start_s/seconds columns: no units |" in line
    x = excerpt_mean(run_scores(("finetune", "musdb", "none", "whole", "bach10")))
    assert len(x) == E


def test_several_studies_are_listed_and_refused(tmp_path, capsys):
    root = tmp_path / "runs"
    write_run(root, ("baseline", "bach10"), study="paper")
    write_run(root, ("baseline", "bach10"), study="demo")
    out = tmp_path / "out"
    assert main([str(root), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "2 studies (demo, paper)" in err and str(root / "demo") in err
    assert not out.exists()
    assert main([str(root / "paper"), "--out", str(out)]) == 0  # one study: fine


def test_a_study_inside_a_study_is_not_mixed_in(tmp_path):
    root = tmp_path / "runs"
    write_run(root, ("baseline", "bach10"), study="paper")
    write_run(root / "paper", ("baseline", "dagstuhl"), study="ablation")  # runs/paper/ablation/...
    paths = write_report(root / "paper", tmp_path / "out")
    summ = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert list(summ.run) == ["baseline/bach10"] and paths["problems"] == []


def test_header_names_generated_and_real_test_data(tmp_path):
    root = tmp_path / "runs"
    for d, td in (
        ("bach10", {"generated": True, "files_root": None, "tracks": None}),
        ("dagstuhl", {"generated": False, "files_root": "/data/DCS/audio_wav_22050_mono", "tracks": 3}),
    ):
        run = write_run(root, ("baseline", d), study="paper")
        res = json.loads((run / "result.json").read_text())
        res["test_data"] = td
        (run / "result.json").write_text(json.dumps(res))
    write_report(root, tmp_path / "out")
    head = (tmp_path / "out" / "report.md").read_text().split("## ")[0]
    assert "**Test data of bach10**: generated tones and noise (`data.generated=true`), not music" in head
    assert "**Test data of dagstuhl**: the real dataset (test files under `/data/DCS/audio_wav_22050_mono`)" in head
    assert "**These are not results on the real datasets**" in head  # one set was generated


def test_self_supervised_pretraining_is_compared_with_the_supervised_one_on_the_same_audio(tmp_path):
    from transfersep.report.results import supervised_twin

    # the twin is the same corpus by dc: the self-supervised pretrainings read the Slakh corpus; a folder
    # of mixtures has no supervised pretraining on the grid
    assert supervised_twin("slakh_mixit") == supervised_twin("slakh_boot") == "slakh"
    assert supervised_twin("slakh") is None and supervised_twin("mixtures_mixit") is None
    root = tmp_path / "runs"
    keys = [
        k
        for d in DOWNS
        for k in [
            ("baseline", d),
            *(("finetune", c, "none", "whole", d) for c in ("slakh", "slakh_mixit", "slakh_boot")),
        ]
    ]
    for k in keys:
        write_run(root, k)
    out = tmp_path / "out"
    write_report(root, out)
    tests = pd.read_csv(out / "tests.csv")
    s = tests[tests.family.str.startswith("S")]
    assert len(s) == 2 * len(DOWNS)
    for _, r in s.iterrows():
        assert r.y == f"finetune/slakh-none-whole-{r.downstream}"
        assert r.x in {f"finetune/{c}-none-whole-{r.downstream}" for c in ("slakh_mixit", "slakh_boot")}
        x, y = excerpt_mean(run_scores(key_of(r.x))), excerpt_mean(run_scores(key_of(r.y)))
        assert r.p == pytest.approx(stats.wilcoxon(x, y, alternative="greater").pvalue)
        assert bool(r.significant) == ("slakh_mixit" in r.x)  # +1 dB on every excerpt vs -3 dB
    h1 = tests[tests.family.str.startswith("H1")]
    assert len(h1) == 3 * len(DOWNS)  # each self-supervised pretraining against the baseline too, as supervised
    md = (out / "report.md").read_text()
    assert "### Self-supervised vs. supervised pretraining (S)" in md


def test_missing_commands_carry_every_option_their_downstream_sets_runs_were_launched_with(tmp_path):
    """Options only some runs share (a dataset's path, a stem folder's sources and patterns, a budget)
    reach the commands for that downstream set, which say `transfersep train` (any folder)."""
    from transfersep.report.header import options_for, study_info
    from transfersep.report.scan import scan
    from transfersep.report.text import missing_markdown

    root = tmp_path / "runs"
    stems = ["paths.stems=/my stems", "downstream.dataset.sources=[lead,rhythm]", "budget.finetune=50"]
    stems.append('downstream.dataset.patterns={lead: ["*vox*"], rhythm: ["*gtr*"]}')
    for key, extra in [
        (("finetune", "slakh", "none", "whole", "bach10"), ["paths.bach10=/data/b10", "budget.finetune=50"]),
        (("finetune", "slakh", "none", "whole", "dagstuhl"), ["paths.dagstuhl=/data/dg"]),
        (("baseline", "dagstuhl"), ["paths.dagstuhl=/data/dg", "init_from=/x.safetensors"]),
    ]:
        hydra_record(write_run(root, key, study="demo"), key, extra)
    runs, _ = scan(root / "demo")
    info = study_info(root / "demo", runs)
    missing = [
        ("baseline", "bach10"),
        ("finetune", "slakh", "none", "mask", "bach10"),
        ("finetune", "slakh", "none", "mask", "dagstuhl"),
    ]
    lines = missing_markdown([point_of(k) for k in missing], info.options, partial(options_for, info))
    shared = "transfersep train experiment=demo 'paths.data_dir=/srv/demo data' paths.runs_dir=/srv/runs study=demo"
    b10 = "paths.bach10=/data/b10 budget.finetune=50"
    assert lines[0] == f"- from-scratch baseline × bach10: `{shared} {b10} pretrain=none downstream=bach10`"
    # another downstream set's options never leak in; one-off switches (init_from) are never carried
    assert f"`{shared} {b10} pretrain=slakh augment=none finetune=mask downstream=bach10`" in lines[1]
    assert (
        f"`{shared} paths.dagstuhl=/data/dg pretrain=slakh augment=none finetune=mask downstream=dagstuhl`" in lines[2]
    )
    assert not any("python train.py" in ln or "init_from" in ln for ln in lines)

    # a stem folder: its sources and patterns come along, quoted for the shell
    key = ("finetune", "slakh", "none", "whole", "stems")
    hydra_record(write_run(root, key, study="demo"), key, stems)
    info = study_info(root / "demo", scan(root / "demo")[0])
    (line,) = missing_markdown([point_of(("baseline", "stems"))], info.options, partial(options_for, info))
    for o in stems:
        assert shlex.quote(o) in line


def test_a_corpus_of_generated_or_rendered_audio_is_named_so_wherever_the_report_names_it(tmp_path):
    root, corpus = tmp_path / "runs", tmp_path / "demo data"
    demo_study(root, corpus)
    study = root / "demo"
    pre = study / "pretrain" / "slakh-none"
    pre.mkdir(parents=True, exist_ok=True)
    (pre / "run_config.json").write_text(json.dumps({"config": {"data": {"generated": True}, "pretrain": {}}}))
    parent = {"kind": "run", "subdir": "pretrain/slakh-none", "grid_point": {"stage": "pretrain", "pretrain": "slakh"}}
    for res in study.glob("finetune/*/result.json"):
        r = json.loads(res.read_text())
        r["extra"]["parent"] = parent
        res.write_text(json.dumps(r))
    out = tmp_path / "out"
    assert main([str(study), "--out", str(out)]) == 0
    md = (out / "report.md").read_text()
    head = md.split("## Figure 1")[0]
    assert "**Pretraining data of slakh**: generated tones and noise (`data.generated=true`), not music" in head
    body = md.split("## Figure 1")[1]
    assert "Slakh (generated audio)" in body and "| Slakh |" not in body
    assert "Bach10 (rendered demo corpus)" in body

    # the same pretraining on the demo corpus's rendered Slakh-style tracks
    config = {"data": {"generated": False}, "pretrain": {"dataset": {"root": str(corpus / "slakh2100_flac_redux")}}}
    (pre / "run_config.json").write_text(json.dumps({"config": config}))
    assert main([str(study), "--out", str(out)]) == 0
    md = (out / "report.md").read_text()
    rendered = "the demo corpus (scores rendered with FluidSynth into the dataset's layout)"
    assert f"**Pretraining data of slakh**: {rendered} at `{corpus}`" in md
    assert "Slakh (rendered demo corpus)" in md.split("## Figure 1")[1]
