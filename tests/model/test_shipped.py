"""The pretrained models shipped with the package: found by name with no network, listed by
`transfersep models`, and a fine-tune starts from the CPU model with the CPU preset."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from transfersep.model.shipped import SHIPPED, file_sha256, path_of, resolve, resolve_overrides
from transfersep.run.config import compose
from transfersep.run.plan import make_plan

ROOT = Path(__file__).resolve().parents[2]
CPU_MODEL = "slakh-cpu"  # the one a laptop fine-tune starts from (experiment=cpu)


def test_the_cpu_model_is_shipped_for_the_cpu_preset() -> None:
    assert SHIPPED[CPU_MODEL].experiment == "cpu"


@pytest.mark.parametrize("name", list(SHIPPED))
def test_shipped_file_is_package_data_and_matches_its_digests(name: str) -> None:
    from transfersep.model.loading import load_model

    m = SHIPPED[name]
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


@pytest.mark.parametrize("name", list(SHIPPED))
def test_compose_with_init_from_a_name_loads_the_shipped_file(tmp_path, name: str) -> None:
    cfg = compose(
        [
            "downstream=stems",
            f"init_from={name}",
            f"experiment={SHIPPED[name].experiment}",
            f"paths.runs_dir={tmp_path}",
            "paths.stems=/nowhere",
            "downstream.dataset.sources=[lead,rhythm]",
        ]
    )
    assert Path(cfg.init_from) == path_of(name)
    plan = make_plan(cfg)
    assert plan.init_from == path_of(name).resolve()
    # the preset's sizes are the shipped model's, so the fine-tune can load it
    assert {k: cfg.model[k] for k in SHIPPED[name].sizes} == SHIPPED[name].sizes


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "transfersep.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def test_models_verb_lists_the_shipped_models(tmp_path) -> None:
    p = _cli("models", "--check", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert p.stdout.count("file matches its digest") == len(SHIPPED)
    for m in SHIPPED.values():
        millions = f"{m.parameters / 1e6:.2f} M parameters"
        for text in (m.name, m.weights_sha256, f"experiment={m.experiment} init_from={m.name}", millions):
            assert text in p.stdout


def test_compare_tells_a_reproduction_from_other_weights(tmp_path) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    # the shipped file itself has the shipped weights
    p = _cli("models", "--compare", str(path_of(CPU_MODEL)), cwd=tmp_path)
    assert p.returncode == 0 and f"same weights as the shipped {CPU_MODEL}" in p.stdout, p.stdout + p.stderr
    # one weight changed by one ulp (header digest rewritten to match): no shipped model has it
    from safetensors import safe_open

    with safe_open(str(path_of(CPU_MODEL)), framework="pt") as f:
        meta = f.metadata()
    state = load_file(str(path_of(CPU_MODEL)))
    k = sorted(state)[0]
    state[k] = state[k].clone()
    state[k].view(-1)[0] = torch.nextafter(state[k].view(-1)[0], torch.tensor(float("inf")))
    from transfersep.model.package import META_KEY, weights_digest

    info = json.loads(meta[META_KEY])
    info["weights_sha256"] = weights_digest(state)
    save_file(state, str(tmp_path / "other.safetensors"), metadata={**meta, META_KEY: json.dumps(info)})
    p = _cli("models", "--compare", str(tmp_path / "other.safetensors"), cwd=tmp_path)
    assert p.returncode == 1 and "no shipped model has these weights" in p.stdout, p.stdout + p.stderr


def test_fine_tune_from_the_shipped_model_on_the_cpu_preset(tmp_path) -> None:
    # from another folder than the repository: the name, not a path, finds the model
    p = _cli(
        "train",
        "experiment=cpu",
        "data.generated=true",
        "downstream=bach10",
        f"init_from={CPU_MODEL}",
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
    assert result["extra"]["parent"]["weights_sha256"] == SHIPPED[CPU_MODEL].weights_sha256


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
