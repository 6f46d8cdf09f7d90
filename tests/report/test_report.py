"""The report over a synthetic results directory built from known numbers (see conftest.py)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import stats

from eval_synth import (
    AUGMENTS,
    CORPORA,
    DOWNS,
    MASK_UP,
    all_keys,
    excerpt_mean,
    overall_mean,
    point_of,
    run_scores,
    unit_of,
)
from project import grid_counts
from transfersep.report.build import NothingToReport, main, write_report

PNGS = ["fig1_pretraining.png", "fig2_augmentation.png", "fig3_curves.png", "table2_mask_minus_whole.png"]
OTHER = ["table2_mask_minus_whole.csv", "table2_mask_minus_whole.md", "tests.csv", "summary.csv", "report.md"]


def test_full_study(study, tmp_path):
    runs = study()
    out = tmp_path / "out"
    assert main([str(runs), "--out", str(out)]) == 0
    for name in PNGS + OTHER:
        assert (out / name).stat().st_size > 0, name
    for name in PNGS:
        with Image.open(out / name) as im:
            im.verify()
        with Image.open(out / name) as im:
            assert im.format == "PNG" and im.size[0] > 600 and im.size[1] > 300

    # Table 2: mask minus whole of the overall means, as constructed; only MASK_UP significant
    t2 = pd.read_csv(out / "table2_mask_minus_whole.csv")
    assert len(t2) == len(AUGMENTS) * len(CORPORA) * len(DOWNS)
    for _, r in t2.iterrows():
        mask = ("finetune", r.pretrain, r.augment, "mask", r.downstream)
        whole = ("finetune", r.pretrain, r.augment, "whole", r.downstream)
        assert r.mask_minus_whole_db == pytest.approx(overall_mean(mask) - overall_mean(whole), abs=1e-9)
        # the constructed shifts have exact means: +1 dB for MASK_UP, -3 dB elsewhere
        assert r.mask_minus_whole_db == pytest.approx(
            1.0 if (r.downstream, r.pretrain, r.augment) == MASK_UP else -3.0, abs=1e-9
        )
        assert r.significant_increase == ((r.downstream, r.pretrain, r.augment) == MASK_UP)
    md = (out / "table2_mask_minus_whole.md").read_text()
    assert md.count("**") == 2 + 2  # one bold cell + the "**Bold**" legend
    assert "| Pitch shift | MUSDB | -3.00 | **+1.00** |" in md

    # every test against scipy on the constructed per-excerpt means
    tests = pd.read_csv(out / "tests.csv")
    assert len(tests) == len(DOWNS) * (3 + 9 + 12)
    # bach10's 6 pieces cannot reach .001 (said in every row); dagstuhl's 30 takes have nothing to say
    assert (tests.note[tests.downstream == "bach10"] == "6 tracks cannot reach α = 0.001 (smallest p 0.0156)").all()
    assert tests.note[tests.downstream == "dagstuhl"].isna().all()
    for _, r in tests.iterrows():
        x, y = excerpt_mean(run_scores(key_of(r.x))), excerpt_mean(run_scores(key_of(r.y)))
        ref = stats.wilcoxon(x, y, alternative="greater")
        assert r.p == pytest.approx(ref.pvalue, rel=1e-6) and r.statistic == pytest.approx(ref.statistic)
        assert r.n == 30 and r.significant == (ref.pvalue < 0.001)
        # independent columns: bach10 = 6 pieces of 5 overlapping excerpts, dagstuhl = 30 takes;
        # the per-unit mean differences computed here by hand
        u = unit_of(r.downstream)
        dm = np.array([(x - y)[u == k].mean() for k in np.unique(u)])
        ind = stats.wilcoxon(dm, alternative="greater", method="exact")
        n = len(dm)
        assert r.units == "track" and r.n_units == n == (6 if r.downstream == "bach10" else 30)
        assert r.p_units == pytest.approx(ind.pvalue, rel=1e-9) and r.min_p_units == pytest.approx(0.5**n)
        assert r.reaches_alpha == (n >= 10) and r.significant_independent == (ind.pvalue < 0.001)
        assert r.paper_only == (r.significant and not r.significant_independent)
        half = stats.t.ppf(0.975, n - 1) * dm.std(ddof=1) / np.sqrt(n)
        assert r.unit_mean_diff_db == pytest.approx(dm.mean())
        assert (r.mean_ci_low, r.mean_ci_high) == pytest.approx((dm.mean() - half, dm.mean() + half))
        # order statistics (1-based) of the median's interval: n = 6 -> x(1), x(6) (coverage 62/64);
        # n = 30 -> x(10), x(21), since P(Bin(30, .5) <= 9) = .021 <= .025 < P(<= 10) = .049
        lo_i, hi_i = (0, 5) if n == 6 else (9, 20)
        assert (r.median_ci_low, r.median_ci_high) == pytest.approx((np.sort(dm)[lo_i], np.sort(dm)[hi_i]))
    # the paper's test finds every constant shift on bach10; 6 pieces cannot (p >= 1/64)
    bach = tests[tests.downstream == "bach10"]
    assert bach.significant.sum() > 0 and bach.paper_only.equals(bach.significant)
    assert not tests[tests.downstream == "dagstuhl"].paper_only.any()
    # musdb whole over scratch = 3 dB x (1 + jitter of mean 0, range +-0.145): 30 units pin the mean
    h1 = tests[(tests.x == "finetune/musdb-none-whole-dagstuhl")].iloc[0]
    assert 2.8 < h1.mean_ci_low < 3.0 < h1.mean_ci_high < 3.2
    h1 = tests[tests.family.str.startswith("H1")]
    assert set(h1[h1.significant].x.str.split("/").str[1].str.split("-").str[0]) == {"musdb", "slakh"}
    h2 = tests[tests.family.str.startswith("H2")]
    assert set(h2[h2.significant].x.str.split("-").str[1]) == {"pitch"}
    assert len(h2[h2.significant]) == 3 * len(DOWNS)

    summ = pd.read_csv(out / "summary.csv")
    assert len(summ) == len(all_keys())
    b = summ[summ.run == "baseline/bach10"].iloc[0]
    assert b.model == "from scratch → Bach10"
    assert b.sisdr_mean == pytest.approx(overall_mean(("baseline", "bach10"))) and b.curve_points == 13
    assert set(summ.curve_points[summ.stage == "finetune"]) == {3}

    report = (out / "report.md").read_text()
    for name in PNGS:
        assert f"]({name})" in report
    assert "None: the study grid is complete." in report and "## Problems" not in report
    assert "| bach10 | finetune/slakh-none-whole-bach10 | baseline/bach10 | 4.24 | 0.24 | +4.00 |" in report
    # side by side: the paper's p and the per-unit one, the flag where they disagree
    line = next(ln for ln in report.splitlines() if ln.startswith("| bach10 | finetune/slakh-none-whole-bach10 | base"))
    assert "| 0.0156 | 0.0156 | cannot reach α | ⚠ significant only under the paper's test;" in line
    assert "6 tracks cannot reach α = 0.001 (smallest p 0.0156)" in line and "| 6 tracks (pieces like these) |" in line
    assert f"{int(tests.paper_only.sum())} comparison(s) are significant only under the paper's test" in report
    assert "Zero-shot" not in report and "zero-shot" not in report.split("## Runs")[1]  # a study without probes
    # the runs table repeats no column: the directory, then the model in words
    runs_table = report.split("## Runs")[1].split("\n## ")[0]
    assert "| run directory | model | SI-SDR mean (dB) |" in runs_table
    assert "| finetune/slakh-none-whole-bach10 | Slakh, no augmentation, whole → Bach10 |" in runs_table


def key_of(name: str) -> tuple:
    stage, rest = name.split("/")
    return (stage, *rest.split("-"))


def test_partial_study_lists_missing_and_does_not_crash(study, tmp_path):
    drop = (
        ("baseline", "dagstuhl"),
        ("finetune", "slakh", "stretch", "mask", "dagstuhl"),
        ("finetune", "both", "incoherent", "whole", "bach10"),
    )
    runs = study(drop=drop)
    # a broken result.json and one with a different test set
    bad = runs / "study" / "finetune" / "broken"
    bad.mkdir()
    (bad / "result.json").write_text("{not json")
    other = runs / "study" / "finetune" / "musdb-pitch-whole-bach10" / "result.json"
    res = json.loads(other.read_text())
    res["test_set_sha1"] = "something-else"
    other.write_text(json.dumps(res))

    out = tmp_path / "out"
    paths = write_report(runs, out)
    for name in PNGS + OTHER:
        assert (out / name).exists(), name
    assert sorted(k.subdir for k in paths["missing"]) == sorted(point_of(k).subdir for k in drop)
    report = (out / "report.md").read_text()
    missing_section = report.split("## Missing grid points")[1]
    # no Hydra record in these runs: the options are what result.json says (seed 0)
    for cmd in (
        "transfersep train seed=0 pretrain=none downstream=dagstuhl",
        "transfersep train seed=0 pretrain=slakh augment=stretch finetune=mask downstream=dagstuhl",
        "transfersep train seed=0 pretrain=both augment=incoherent finetune=whole downstream=bach10",
    ):
        assert cmd in missing_section
    assert missing_section.count("\n- ") == 3
    assert "3 of 50 expected grid point(s)" in report and "broken" in report.split("## Problems")[1]

    tests = pd.read_csv(out / "tests.csv")
    h1_dag = tests[tests.family.str.startswith("H1") & (tests.downstream == "dagstuhl")]
    assert h1_dag.note.str.contains("missing run: baseline/dagstuhl").all() and not h1_dag.significant.any()
    mism = tests[tests.x == "finetune/musdb-pitch-whole-bach10"]
    assert mism.note.str.contains("not comparable").all() and not mism.significant.any()
    t2 = pd.read_csv(out / "table2_mask_minus_whole.csv")
    gone = t2[(t2.pretrain == "slakh") & (t2.augment == "stretch") & (t2.downstream == "dagstuhl")].iloc[0]
    assert np.isnan(gone.mask_minus_whole_db) and "missing run" in gone.note
    assert "| Time stretch | Slakh | -3.00 | absent |" in (out / "table2_mask_minus_whole.md").read_text()


def test_empty_and_bad_arguments(study, tmp_path):
    (tmp_path / "runs").mkdir()
    with pytest.raises(NothingToReport, match="no fine-tune, baseline or zero-shot run has finished"):
        write_report(tmp_path / "runs", tmp_path / "out", downstream=["bach10"])
    assert not (tmp_path / "out").exists()  # no figure of nothing
    runs = study(drop=[k for k in all_keys() if k != ("baseline", "bach10")])  # one evaluated run
    paths = write_report(runs, tmp_path / "out", downstream=["bach10"])
    assert paths["missing"] == []  # nothing else launched: only its baseline is implied
    assert all((tmp_path / "out" / n).exists() for n in PNGS + OTHER)
    paths = write_report(runs, tmp_path / "out", downstream=["bach10"], full_grid=True)
    n = grid_counts(downstream=["bach10"], pretrain_steps=["end"])
    assert len(paths["missing"]) == n["finetunes"]  # every pretraining of the grid x 2 modes
    with pytest.raises(SystemExit):
        main([str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    with pytest.raises(SystemExit):
        main([str(tmp_path / "runs"), "--out", str(tmp_path / "o"), "--alpha", "2"])


def test_wandb_offline(study, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    out = tmp_path / "out"
    assert main([str(study()), "--out", str(out), "--wandb", "--wandb-project", "test"]) == 0
    runs = list((out / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and any(p.suffix == ".wandb" for p in runs[0].iterdir())
    media = [p.name for p in runs[0].rglob("*.png")]
    assert any(n.startswith("fig1") for n in media) and any(n.startswith("table2_png") for n in media)


def test_a_study_whose_runs_all_failed_says_so_lists_them_and_writes_nothing(tmp_path, capsys):
    study = tmp_path / "runs" / "tiny"
    failed = {
        "baseline/bach10": "ValueError: boom",
        "finetune/slakh-none-whole-bach10": "trace line\nDatasetError: bach10: root /x does not exist",
        "pretrain/slakh-none": "RuntimeError: out of memory",
    }
    for sub, error in failed.items():
        (study / sub).mkdir(parents=True)
        (study / sub / "status.json").write_text(json.dumps({"state": "failed", "grid_point": {}, "error": error}))
    out = tmp_path / "report"
    assert main([str(study), "--out", str(out)]) == 1
    cap = capsys.readouterr()
    assert cap.out == "" and not out.exists()
    lines = cap.err.strip().splitlines()
    assert lines[0].startswith(f"error: {study}: nothing to report, all 3 run(s) failed; no figure or table written")
    assert lines[1:] == [
        "  failed baseline/bach10: ValueError: boom",
        "  failed finetune/slakh-none-whole-bach10: DatasetError: bach10: root /x does not exist",
        "  failed pretrain/slakh-none: RuntimeError: out of memory",
    ]


def test_report_help_names_its_command(capsys):
    from transfersep.cli import main as cli_main

    assert cli_main(["report", "-h"]) == 0
    assert capsys.readouterr().out.startswith("usage: transfersep report ")
