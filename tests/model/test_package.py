"""Model packages: round trip against the training system and checkpoint, refusal of bad files."""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import transfersep
from sep_fixtures import GRID, NAMES, TINY, train_tiny, tree
from transfersep.cli import main
from transfersep.model import ChimeraConfig, ChimeraNet
from transfersep.model.export import export_model
from transfersep.model.loading import load_model, recorded_model
from transfersep.model.package import ModelLoadError


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "baseline" / "stems"
    system = train_tiny(run_dir)
    return run_dir, system


@pytest.fixture
def package(run, tmp_path) -> Path:
    return export_model(run[1], tmp_path / "model.safetensors", extra={"grid_point": GRID, "note": "test"})


def mixtures(n: int = 3, length: int = 12_345) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return 0.1 * torch.randn(n, length, generator=g)


def test_package_holds_the_weights_and_describes_the_model(run, package):
    _, system = run
    weights = load_file(package)  # read independently of transfersep
    own = system.model.state_dict()
    assert set(weights) == set(own)  # the ChimeraNet only: no optimizer, no STFT window
    for k in own:
        assert torch.equal(weights[k], own[k]), k
    with safe_open(str(package), "pt") as f:
        header = f.metadata()
    assert header["format"] == "pt"
    meta = json.loads(header["transfersep"])
    assert meta["format"] == "transfersep-model" and meta["format_version"] == 1
    assert meta["transfersep_version"] == transfersep.__version__
    assert meta["model"] == system.model.cfg.to_dict() and meta["model"].items() >= {**TINY, "n_sources": 3}.items()
    assert meta["stft"] == {
        "n_fft": 512,
        "hop_length": 128,
        "sample_rate": 16000,
        "window": "sqrt_hann",
        "center": True,
    }
    assert meta["sample_rate"] == 16000 and meta["source_names"] == NAMES
    assert meta["phase"] == "whole" and meta["steps"] == 3
    assert meta["run"] == {"grid_point": GRID, "note": "test"}
    assert len(meta["weights_sha256"]) == 64


def test_package_and_checkpoint_separate_like_the_training_system(run, package):
    run_dir, system = run
    mix = mixtures()
    expected = system.separate(mix)
    assert expected.shape == (3, 3, mix.shape[-1])
    for src in (package, run_dir / "final.ckpt", run_dir):  # a run dir resolves to final.ckpt here
        lm = load_model(src)
        assert lm.source_names == NAMES and lm.sample_rate == 16000
        torch.testing.assert_close(lm.separate(mix), expected, atol=1e-6, rtol=0)


def test_export_from_checkpoint_and_run_dir_names_the_run(run, tmp_path):
    run_dir, system = run
    p = export_model(run_dir, tmp_path / "a.safetensors")
    meta = load_model(p).meta
    assert meta["run"]["grid_point"] == GRID and meta["run"]["run_dir"] == str(run_dir)
    assert meta["steps"] == 3 and meta["source_names"] == NAMES
    torch.testing.assert_close(load_model(p).separate(mixtures()), system.separate(mixtures()), atol=1e-6, rtol=0)
    assert tree(tmp_path) == ["a.safetensors"]  # atomic write: no temp file left


def test_loaded_net_feeds_load_flexible_for_fine_tuning(package):
    """The init_from path: backbone + embedding kept, a fresh mask head for 2 sources."""
    net = load_model(package).net
    target = ChimeraNet(ChimeraConfig(**{**TINY, "n_sources": 2}))
    skipped = target.load_flexible(net.state_dict(), keep_mask_head=False)
    assert skipped == ["mask_head.bias", "mask_head.weight"]
    assert torch.equal(target.blstm.weight_hh_l1, net.blstm.weight_hh_l1)
    assert torch.equal(target.embedding_head.weight, net.embedding_head.weight)


def test_cli_export_writes_the_package_into_the_run(run, tmp_path, capsys):
    run_dir = tmp_path / "copy"
    shutil.copytree(run[0], run_dir)
    assert main(["export", str(run_dir)]) == 0
    assert (run_dir / "model.safetensors").is_file()
    assert "sources ['bass', 'drums', 'keys']" in capsys.readouterr().out
    assert main(["export", str(tmp_path / "nope")]) == 2
    assert "no such model file" in capsys.readouterr().err


# -- refusals ------------------------------------------------------------------------------------
def _expect_refusal(path: Path, *words: str) -> None:
    with pytest.raises(ModelLoadError) as e:
        load_model(path)
    msg = str(e.value)
    assert str(path) in msg
    for w in words:
        assert w in msg, msg


def test_corrupt_package_fails_the_checksum(package):
    data = bytearray(package.read_bytes())
    data[-100] ^= 0xFF  # a flipped byte inside the weights: safetensors alone would not notice
    package.write_bytes(bytes(data))
    _expect_refusal(package, "checksum", "corrupt")


def test_truncated_package_and_checkpoint_are_refused(run, package, tmp_path):
    package.write_bytes(package.read_bytes()[: package.stat().st_size // 2])
    _expect_refusal(package, "truncated or corrupt")
    ckpt = tmp_path / "final.ckpt"
    ckpt.write_bytes((run[0] / "final.ckpt").read_bytes()[:5000])
    _expect_refusal(ckpt, "truncated or corrupt")


def test_other_safetensors_and_other_files_are_refused(tmp_path):
    other = tmp_path / "other.safetensors"
    save_file({"weight": torch.randn(4, 4)}, str(other), metadata={"format": "pt"})
    _expect_refusal(other, "not a transfersep model package", "transfersep export")
    # the kind is sniffed from the content: byte 8 of a safetensors file opens its JSON header
    noise = bytearray(random.Random(0).randbytes(3000))
    noise[8] = ord("#")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(bytes(noise))
    _expect_refusal(junk, "neither")
    noise[8] = ord("{")  # looks like safetensors, is not
    junk.write_bytes(bytes(noise))
    _expect_refusal(junk, "not a readable safetensors file", "corrupt")
    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")
    _expect_refusal(empty, "neither")
    _expect_refusal(tmp_path / "missing.safetensors", "no such model file")
    _expect_refusal(tmp_path, "without model.safetensors or final.ckpt")


def test_newer_format_and_mismatched_weights_are_refused(package, tmp_path):
    weights = load_file(package)
    with safe_open(str(package), "pt") as f:
        meta = json.loads(f.metadata()["transfersep"])
    newer = tmp_path / "newer.safetensors"
    save_file(weights, str(newer), metadata={"format": "pt", "transfersep": json.dumps({**meta, "format_version": 99})})
    _expect_refusal(newer, "upgrade transfersep")
    wrong = tmp_path / "wrong.safetensors"
    bad = {**meta, "model": {**meta["model"], "hidden_size": 32}}  # checksum still right: the config lies
    future = {**meta, "model": {**meta["model"], "some_speed_switch": True}}  # unknown, no weights: ignored
    fine = tmp_path / "future.safetensors"
    save_file(weights, str(fine), metadata={"format": "pt", "transfersep": json.dumps(future)})
    assert load_model(fine).source_names == NAMES
    save_file(weights, str(wrong), metadata={"format": "pt", "transfersep": json.dumps(bad)})
    _expect_refusal(wrong, "do not fit the model config")


class _Payload:
    def __reduce__(self):
        return (Path.touch, (Path(os.environ["TRANSFERSEP_TEST_MARKER"]),))


def test_checkpoint_with_arbitrary_objects_is_refused_without_running_them(tmp_path, monkeypatch):
    marker = tmp_path / "code-ran"
    monkeypatch.setenv("TRANSFERSEP_TEST_MARKER", str(marker))
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"model": {}, "source_names": ["a"]}, "x": _Payload()}, evil)
    _expect_refusal(evil, "refused")
    assert not marker.exists()


def test_checkpoint_of_something_else_is_refused(tmp_path):
    other = tmp_path / "other.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, other)
    _expect_refusal(other, "not a transfersep training checkpoint")


# -- a package carries its own sizes ---------------------------------------------------------------
def test_recorded_model_is_what_the_header_says(run, package):
    with safe_open(str(package), "pt") as f:  # the header, read by safetensors itself
        header_model = json.loads(f.metadata()["transfersep"])["model"]
    assert recorded_model(package) == header_model
    ckpt = torch.load(run[0] / "final.ckpt", map_location="cpu", weights_only=True)
    assert recorded_model(run[0] / "final.ckpt") == ckpt["hyper_parameters"]["model"]


def _fine_tune_plan(tmp_path: Path, *overrides: str):
    from project import compose
    from transfersep.run.plan import make_plan

    cfg = compose(
        ["experiment=tiny", "data.generated=true", "pretrain=slakh", "downstream=bach10", *overrides], tmp_path / "runs"
    )
    return make_plan(cfg)


@pytest.mark.parametrize("parent", ["init_from", "study"])
def test_a_config_of_other_sizes_than_the_parent_is_refused_naming_each_key(run, package, tmp_path, parent):
    from transfersep.run.errors import ModelSizeError
    from transfersep.run.parent import parent_problem

    # the fixture's model: hidden 16, 2 layers, D = 6; experiment=tiny: hidden 32, 2 layers, D = 10
    extra = [f"init_from={package}"] if parent == "init_from" else []
    plan = _fine_tune_plan(tmp_path, *extra)
    if parent == "study":
        plan.parent_dir.mkdir(parents=True)
        shutil.copy(run[0] / "final.ckpt", plan.parent_dir / "final.ckpt")
    with pytest.raises(ModelSizeError) as e:
        parent_problem(plan, "tiny")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(str(plan.parent_ckpt))
    assert "is a ChimeraNet with model.hidden_size=16, model.embedding_dim=6" in msg
    assert "this run's config says model.hidden_size=32, model.embedding_dim=10" in msg
    assert msg.endswith("add model.hidden_size=16 model.embedding_dim=6")
    # the sizes it names make the run fit; dropout may differ (no weight depends on it)
    fits = _fine_tune_plan(tmp_path, *extra, "model.hidden_size=16", "model.embedding_dim=6", "model.dropout=0.1")
    assert parent_problem(fits, "tiny") is None


@pytest.mark.slow  # two fresh interpreters compose the config and import lightning: ~10-20 s each
def test_init_from_of_another_size_stops_in_one_line_and_dry_run_says_so(package, tmp_path):
    import subprocess
    import sys

    from project import ROOT

    runs = tmp_path / "runs"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline", "TRANSFERSEP_RUNS": str(runs)}
    env.pop("HYDRA_FULL_ERROR", None)
    cmd = [sys.executable, "train.py", "experiment=tiny", "data.generated=true", "logger=csv", "pretrain=slakh"]
    cmd += ["downstream=bach10", f"init_from={package}"]
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 2, p.stderr[-3000:]
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "model.hidden_size=16" in lines[0] and "model.hidden_size=32" in lines[0], lines
    assert not [f for f in runs.rglob("*") if f.is_file()]  # nothing written
    p = subprocess.run([*cmd, "dry_run=true"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode != 0
    (problem,) = json.loads(p.stdout)["problems"]
    assert problem == lines[0].removeprefix("error: ")
