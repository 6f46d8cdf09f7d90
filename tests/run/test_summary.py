"""The end-of-run summary names only files that exist and says what the run did."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from transfersep.run.console import run_summary


def probe_result(ckpt: str) -> dict:
    return {
        "overall": {"mean": 3.25},
        "per_source": {"violin": {"mean": 4.0}, "bassoon": {"mean": 2.5}},
        "sources": ["violin", "bassoon"],
        "n_excerpts": 4,
        "extra": {"method": "dc-kmeans", "checkpoint": ckpt},
    }


def test_a_probes_summary_says_what_it_probed_and_names_only_its_files(tmp_path: Path) -> None:
    run = tmp_path / "zeroshot" / "slakh-none-bach10"
    run.mkdir(parents=True)
    for f in ("scores.csv", "result.json", "train.log"):
        (run / f).write_text("")
    plan = SimpleNamespace(run_dir=run, stage="zeroshot", subdir="zeroshot/slakh-none-bach10")
    ckpt = str(tmp_path / "pretrain" / "slakh-none" / "final.ckpt")
    text = run_summary(plan, probe_result(ckpt), 0.2)
    head = text.splitlines()[0]
    assert head == (
        "zeroshot zeroshot/slakh-none-bach10 finished: probed dc-kmeans zero-shot, nothing trained, "
        "4 test excerpts in 0.2s"
    )
    assert "? steps" not in text and "model.safetensors" not in text  # a probe writes no model
    assert f"  probed  {ckpt}" in text
    assert f"  scores  {run / 'scores.csv'}, {run / 'result.json'}" in text


def test_a_training_runs_summary_skips_files_it_did_not_write(tmp_path: Path) -> None:
    run = tmp_path / "pretrain" / "slakh-none"
    run.mkdir(parents=True)
    plan = SimpleNamespace(run_dir=run, stage="pretrain", subdir="pretrain/slakh-none")
    assert "model.safetensors" not in run_summary(plan, {"steps": 6}, 12.0)
    (run / "model.safetensors").write_bytes(b"")
    text = run_summary(plan, {"steps": 6}, 12.0)
    assert text.splitlines()[0] == "pretrain pretrain/slakh-none finished: 6 steps in 12s"
    assert f"  model   {run / 'model.safetensors'}" in text and "scores" not in text
