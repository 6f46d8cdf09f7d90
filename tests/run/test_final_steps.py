"""A run stopped after its training reached its budget (Ctrl-C during the final evaluation) keeps
the training: last.ckpt is written at the final step whatever the checkpoint cadence, the message
says so, and the relaunch only evaluates."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch
from test_train_console import TINY, env, train

from project import ROOT

# Ctrl-C while the test excerpts are scored: evaluate() raises KeyboardInterrupt, as SIGINT does there
CTRL_C_IN_EVALUATION = """
import runpy, sys
import transfersep.evaluation.evaluate as ev
def interrupted(*args, **kwargs):
    raise KeyboardInterrupt
ev.evaluate = interrupted
sys.argv = ["train.py", *sys.argv[1:]]
runpy.run_path("train.py", run_name="__main__")
"""


def test_ctrl_c_during_evaluation_keeps_the_training_and_the_relaunch_only_evaluates(tmp_path: Path) -> None:
    # a budget below the checkpoint cadence: no last.ckpt would come from the cadence at all
    cmd = [*TINY, "pretrain=none", "downstream=bach10", "checkpoint_every_n_steps=100", "curve.every_n_steps=0"]
    run = tmp_path / "runs" / "tiny" / "baseline" / "bach10"
    p = subprocess.run(
        [sys.executable, "-c", CTRL_C_IN_EVALUATION, *cmd],
        cwd=ROOT,
        env=env(tmp_path),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert p.returncode == 130, p.stderr[-2000:]
    (line,) = p.stderr.strip().splitlines()
    assert "no checkpoint was written yet" not in line
    assert line.startswith("baseline/bach10 interrupted (Ctrl-C)")
    assert "training had reached its budget" in line and "without training again" in line, line
    steps = torch.load(run / "final.ckpt", map_location="cpu", weights_only=True, mmap=True)["global_step"]
    last = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True, mmap=True)
    assert last["global_step"] == steps > 0 and (run / "model.safetensors").is_file()
    assert json.loads((run / "status.json").read_text())["state"] == "interrupted"

    again = train(tmp_path, *cmd)
    assert again.returncode == 0, again.stderr[-2000:]
    out = again.stdout + again.stderr
    assert f"resuming from {run / 'checkpoints' / 'last.ckpt'}" in out
    assert f"training reached its budget ({steps} steps) before" in out
    st = json.loads((run / "status.json").read_text())
    assert st["state"] == "finished" and st["result"]["extra"]["steps"] == steps
    assert (run / "result.json").is_file()
    # no step trained again: the training rows of metrics.csv are the first attempt's, once each
    rows = (run / "csv" / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    loss = header.index("train/loss")
    trained = [r.split(",")[header.index("step")] for r in rows[1:] if r.split(",")[loss]]
    assert len(trained) == len(set(trained)) == steps
