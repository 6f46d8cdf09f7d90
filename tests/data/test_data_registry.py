"""build_real through the real Hydra configs, the inspection command, config/loader agreement."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
import yaml
from hydra import compose, initialize_config_dir

from project import CONF
from transfersep.data import build_datamodule, dagstuhl, musdb, slakh
from transfersep.data.__main__ import main as inspect_main


def make_cfg(trees, tmp_path, *overrides: str):
    paths = [
        f"paths.musdb={trees['musdb']}",
        f"paths.slakh={trees['slakh']}",
        f"paths.bach10={trees['bach10']}",
        f"paths.dagstuhl={trees['dagstuhl']}",
        f"paths.remixpacks={trees['remixpacks']}",
        f"paths.stems={trees['remixpacks']}",
        f"paths.cache_dir={tmp_path / 'cache'}",
    ]
    data = ["data.excerpt_seconds=1.0", "data.batch_size=2", "data.n_val=3", "data.n_test=5", "data.num_workers=0"]
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        return compose("train", overrides=[*paths, *data, *overrides])


CASES = [
    ("pretrain", ["pretrain=musdb", "augment=none"], ["accompaniment", "vocals"], "coherent", "coherent"),
    ("pretrain", ["pretrain=slakh", "augment=pitch"], ["bass", "drums", "piano_guitar"], "coherent", "coherent"),
    ("pretrain", ["pretrain=both", "augment=incoherent"], ["bass", "drums", "other"], "incoherent", "coherent"),
    ("pretrain", ["pretrain=both", "augment=stretch"], ["bass", "drums", "other"], "coherent", "coherent"),
    (
        "finetune",
        ["pretrain=both", "downstream=bach10"],
        ["violin", "clarinet", "saxophone", "bassoon"],
        "incoherent",
        "coherent",
    ),
    (
        "finetune",
        ["pretrain=slakh", "downstream=dagstuhl", "augment=pitch"],
        ["male", "female"],
        "coherent",
        "coherent",
    ),
    (
        "baseline",
        ["pretrain=none", "downstream=remixpacks", "downstream.dataset.missing_sources=skip"],
        ["snare", "kick_drum", "cymbals"],
        "incoherent",
        "incoherent",
    ),
    (
        "finetune",
        [
            "pretrain=musdb",
            "downstream=stems",
            "downstream.dataset.sources=[kick,snare]",
            "downstream.dataset.patterns={kick: ['*kick*', bd], snare: ['*snare*', '*snr*']}",
            "downstream.dataset.missing_sources=skip",
        ],
        ["kick", "snare"],
        "coherent",
        "coherent",
    ),
]


@pytest.mark.parametrize("stage,overrides,sources,train_mode,test_mode", CASES)
def test_build_real_gives_a_working_datamodule(trees, tmp_path, stage, overrides, sources, train_mode, test_mode):
    cfg = make_cfg(trees, tmp_path, *overrides)
    dm = build_datamodule(cfg, stage, total_steps=3)
    assert dm.source_names == sources
    assert (dm.train_set.mode, dm.val_set.mode) == (train_mode, test_mode)
    if stage == "pretrain":
        aug = cfg.augment
        assert (dm.train_set.augment is not None) == (aug.pitch_semitones is not None or aug.stretch_rate is not None)
    else:  # the paper augments pretraining only
        assert dm.train_set.augment is None
        assert len(dm.test_set) == 5 and dm.test_set.mode == test_mode
    assert len(dm.val_set) == 3
    batches = list(dm.train_dataloader())
    assert len(batches) == 3
    b = batches[0]
    assert b["mix"].shape == (2, 16000) and b["sources"].shape == (2, len(sources), 16000)
    assert b["mix"].dtype == torch.float32
    assert torch.equal(b["mix"], b["sources"].sum(1))
    v = next(iter(dm.val_dataloader()))
    assert v["sources"].shape[1:] == (len(sources), 16000)


def test_test_excerpts_are_the_same_for_every_model(trees, tmp_path):
    a = build_datamodule(make_cfg(trees, tmp_path, "pretrain=both", "downstream=dagstuhl", "seed=0"), "finetune", 3)
    b = build_datamodule(make_cfg(trees, tmp_path, "pretrain=none", "downstream=dagstuhl", "seed=7"), "baseline", 3)
    for i in range(5):
        assert torch.equal(a.test_set[i]["sources"], b.test_set[i]["sources"])
    assert not torch.equal(a.train_set[0]["sources"], b.train_set[0]["sources"])  # training follows the seed


def test_missing_stems_sources_is_a_clear_error(trees, tmp_path):
    cfg = make_cfg(trees, tmp_path, "pretrain=none", "downstream=stems")
    with pytest.raises(ValueError, match="set the source names"):
        build_datamodule(cfg, "baseline", 3)


def test_inspect_command_prints_the_index(trees, capsys):
    assert inspect_main(["dagstuhl", str(trees["dagstuhl"]), "--split", "test"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {t["name"] for t in out["tracks"]} == {"DCS_LI_QuartetB_Take01", "DCS_TP_QuartetB_Take01"}
    track = out["tracks"][0]
    assert set(track["sources"]) == {"male", "female"} and track["seconds"] == pytest.approx(3.0)
    assert track["sources"]["male"][0]["sample_rate"] == 22050
    assert inspect_main(["both", str(trees["musdb"]), str(trees["slakh"]), "--summary"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["train"]["tracks"] == 3 + 2 and summary["sources"] == ["bass", "drums", "other"]


@pytest.mark.parametrize(
    "name,which",
    [
        ("musdb", "slakh"),
        ("slakh", "musdb"),
        ("bach10", "dagstuhl"),
        ("dagstuhl", "bach10"),
        ("remixpacks", "empty"),
        ("musdb", "typo"),
    ],
)
def test_inspect_command_rejects_wrong_roots(trees, tmp_path, capsys, name, which):
    (tmp_path / "empty").mkdir()
    root = {"empty": tmp_path / "empty", "typo": tmp_path / "musdb18hq_typo"}.get(which) or trees[which]
    assert inspect_main([name, str(root)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(root) in err


@pytest.mark.slow  # a fresh interpreter imports torch and lightning: ~10-20 s here
def test_inspect_command_as_a_module(trees):
    proc = subprocess.run(
        [sys.executable, "-m", "transfersep.data", "bach10", str(trees["bach10"] / "nope")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "does not exist" in proc.stderr


def test_config_defaults_match_the_loaders():
    load = lambda p: yaml.safe_load((CONF / p).read_text())["dataset"]  # noqa: E731
    assert load("pretrain/slakh.yaml")["classes"] == {
        k: slakh.DEFAULT_CLASSES[k] for k in ("bass", "drums", "piano_guitar")
    }
    assert load("pretrain/both.yaml")["slakh_classes"] == {
        k: slakh.DEFAULT_CLASSES[k] for k in ("bass", "drums", "other")
    }
    assert load("pretrain/musdb.yaml")["stems"] == {k: musdb.DEFAULT_GROUPS[k] for k in ("accompaniment", "vocals")}
    assert load("downstream/dagstuhl.yaml")["groups"] == dagstuhl.DEFAULT_GROUPS
