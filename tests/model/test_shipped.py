"""The pretrained model shipped with the package: found by name with no network, listed by
`transfersep models`, and a fine-tune starts from it with the CPU preset."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from transfersep.model.shipped import SHIPPED, file_sha256, path_of, resolve, resolve_overrides
from transfersep.run.config import compose
from transfersep.run.plan import make_plan

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_file_is_package_data_and_matches_its_digests() -> None:
    from transfersep.model.package import load_model

    m = SHIPPED["demo-slakh"]
    assert m.path.is_file() and m.path.parent == ROOT / "src" / "transfersep" / "model" / "shipped"
    assert file_sha256(m.path) == m.file_sha256
    lm = load_model(m.path)
    assert lm.meta["weights_sha256"] == m.weights_sha256
    assert {k: lm.meta["model"][k] for k in m.sizes} == m.sizes
    assert sum(p.numel() for p in lm.net.parameters()) == m.parameters
    # a wheel carries it: setuptools' package-data names the file's pattern
    toml = (ROOT / "pyproject.toml").read_text()
    assert '"transfersep.model.shipped" = ["*.safetensors"]' in toml


def test_a_name_resolves_to_the_shipped_file_unless_a_path_of_that_name_exists(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve("demo-slakh") == str(path_of("demo-slakh"))
    assert resolve_overrides(["init_from=demo-slakh", "seed=1"]) == [f"init_from={path_of('demo-slakh')}", "seed=1"]
    (tmp_path / "demo-slakh").write_text("mine")
    assert resolve("demo-slakh") == "demo-slakh"


def test_compose_with_init_from_a_name_loads_the_shipped_file(tmp_path) -> None:
    cfg = compose(
        [
            "downstream=stems",
            "init_from=demo-slakh",
            "experiment=cpu",
            f"paths.runs_dir={tmp_path}",
            "paths.stems=/nowhere",
            "downstream.dataset.sources=[lead,rhythm]",
        ]
    )
    assert Path(cfg.init_from) == path_of("demo-slakh")
    plan = make_plan(cfg)
    assert plan.init_from == path_of("demo-slakh").resolve()
    # the preset's sizes are the shipped model's, so the fine-tune can load it
    assert {k: cfg.model[k] for k in SHIPPED["demo-slakh"].sizes} == SHIPPED["demo-slakh"].sizes


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "transfersep.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def test_models_verb_lists_the_shipped_model(tmp_path) -> None:
    p = _cli("models", "--check", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    m = SHIPPED["demo-slakh"]
    for text in (m.name, m.weights_sha256, "file matches its digest", "experiment=demo", "0.70 M parameters"):
        assert text in p.stdout


def test_fine_tune_from_the_shipped_model_on_the_cpu_preset(tmp_path) -> None:
    # from another folder than the repository: the name, not a path, finds the model
    p = _cli(
        "train",
        "experiment=cpu",
        "data.generated=true",
        "downstream=bach10",
        "init_from=demo-slakh",
        "budget.finetune=2",
        "data.n_test=4",
        "data.n_val=2",
        "logger=csv",
        f"paths.runs_dir={tmp_path / 'runs'}",
        cwd=tmp_path,
    )
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    run = tmp_path / "runs" / "cpu" / "finetune" / "slakh-none-whole-bach10"
    result = json.loads((run / "result.json").read_text())
    assert result["extra"]["steps"] == 2
    assert result["extra"]["parent"]["weights_sha256"] == SHIPPED["demo-slakh"].weights_sha256


def test_separate_takes_a_shipped_model_name(tmp_path, monkeypatch) -> None:
    import numpy as np
    import soundfile as sf

    from transfersep.cli import main

    monkeypatch.chdir(tmp_path)
    t = np.arange(16_000) / 16_000
    sf.write(
        tmp_path / "song.wav", (0.3 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sign(np.sin(2 * np.pi * 3 * t))), 16_000
    )
    # a pretraining model: its clusters, since its mask head was never trained
    assert main(["separate", "song.wav", "--model", "demo-slakh", "--clusters", "2", "--quiet"]) == 0
    assert sorted(p.name for p in (tmp_path / "separated" / "demo-slakh" / "song").iterdir()) == [
        "cluster_1.wav",
        "cluster_2.wav",
    ]
