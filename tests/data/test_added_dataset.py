"""A dataset added by the three files docs/extending.md names (its loader module with its
declaration, its config file, its value on the grid's downstream axis) reaches the study's grid, the
data command's index and a run: a from-scratch baseline trains on it and is scored on its test songs."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest
import yaml

import datatrees
from project import ROOT, compose, copy_conf
from transfersep.data import loaders, stems
from transfersep.data.loaders import Loader, one_root

SOURCES = ("snare", "kick_drum", "cymbals")


def _patterns() -> dict:
    return yaml.safe_load((ROOT / "conf" / "downstream" / "remixpacks.yaml").read_text())["dataset"]["patterns"]


@pytest.fixture
def fakeset(tmp_path: Path, monkeypatch) -> Path:
    """File 1, src/transfersep/data/fakeset.py: a loader and its declaration (here a module object)."""
    module = types.ModuleType("transfersep.data.fakeset")
    module.LOADER = Loader(
        "fakeset",
        one_root(stems.index, name="fakeset", patterns=_patterns(), **{stems.MISSING_OPTION: "skip"}),
        SOURCES,
        ("test_every", "fold"),
    )
    monkeypatch.setitem(sys.modules, "transfersep.data.fakeset", module)
    monkeypatch.setattr(loaders, "_REGISTRY", dict(loaders._REGISTRY))  # found for this test only
    # file 2, conf/downstream/fakeset.yaml; file 3, its value on sweeps/grid.yaml's downstream axis
    conf = copy_conf(tmp_path, lambda g: g["axes"]["downstream"].append("fakeset"))
    root = datatrees.remixpacks(tmp_path / "fakeset", seconds=2.0)
    dataset = {"name": "fakeset", "root": str(root), "sources": list(SOURCES), "stem_lengths": "pad"}
    dataset |= {"test_every": 3, "fold": "${fold}", "train_mixing": "coherent", "test_mixing": "coherent"}
    (conf / "downstream" / "fakeset.yaml").write_text(yaml.safe_dump({"name": "fakeset", "dataset": dataset}))
    monkeypatch.setenv("TRANSFERSEP_CONF", str(conf))
    return root


def test_an_added_dataset_reaches_the_grid_and_the_index(fakeset: Path) -> None:
    from transfersep.data.registry import build_index
    from transfersep.study.grid import grid_points

    subdirs = {gp.subdir for gp in grid_points()}
    assert {"baseline/fakeset", "zeroshot/slakh-none-fakeset", "finetune/slakh_mixit-pitch-mask-fakeset"} <= subdirs
    idx = build_index("fakeset", [str(fakeset)], stem_lengths="pad")  # the declared sources by default
    assert idx.source_names == list(SOURCES) and idx.split("train") and idx.split("test")


@pytest.mark.slow
def test_a_baseline_trains_and_is_scored_on_an_added_dataset(fakeset: Path, tmp_path: Path) -> None:
    from transfersep.run.lifecycle import run

    runs = tmp_path / "runs"
    run(compose(["experiment=tiny", "logger=csv", "pretrain=none", "downstream=fakeset"], runs))
    result = json.loads((runs / "tiny" / "baseline" / "fakeset" / "result.json").read_text())
    assert result["sources"] == list(SOURCES) and result["n_excerpts"] == 4
