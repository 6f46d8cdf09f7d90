"""The benchmarks time the models the configs define (conf/model/), not copies of their sizes."""

from __future__ import annotations

import shutil

import pytest
import torch

from transfersep.bench.sizes import model_size
from transfersep.bench.step import Variant, make_step
from transfersep.run.config import conf_dir


def test_paper_and_tiny_sizes():
    # the paper's ChimeraNet: 4 BLSTM layers of 500 units per direction, D = 20
    assert {k: model_size("paper")[k] for k in ("hidden_size", "num_layers", "embedding_dim")} == {
        "hidden_size": 500,
        "num_layers": 4,
        "embedding_dim": 20,
    }
    assert model_size("tiny")["hidden_size"] < model_size("paper")["hidden_size"]
    with pytest.raises(ValueError, match="choose one of"):
        model_size("huge")


def test_a_changed_config_changes_the_benchmarked_model(tmp_path, monkeypatch):
    conf = shutil.copytree(conf_dir(), tmp_path / "conf")
    text = (conf / "model" / "chimera.yaml").read_text().replace("hidden_size: 500", "hidden_size: 6")
    (conf / "model" / "chimera.yaml").write_text(text)
    monkeypatch.setenv("TRANSFERSEP_CONF", str(conf))
    step = make_step(Variant("fast", True), "whole", 2, torch.device("cpu"))
    assert step.system.model.blstm.hidden_size == 6 and step.system.model.blstm.num_layers == 4
