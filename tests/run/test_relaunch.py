"""A run's configuration is part of its identity: a relaunch with other settings that shape the
weights is refused in one line (exit 2) and leaves the run as it was, finished or not (an
interrupted one: test_stops.py); settings that do not shape them may differ; rerun=true starts
over with the new ones."""

from __future__ import annotations

import json

from test_stops import snapshot
from test_train_console import TINY, train

from transfersep.run.identity import differences, free

PRE = [*TINY, "pretrain=slakh"]


def one_line(p) -> str:
    lines = [ln for ln in (p.stdout + p.stderr).splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    return lines[0]


def test_which_keys_shape_the_weights():
    # hand-written: the keys of the list in docs/one-run.md may differ, every other key is the run's identity
    recorded = {
        "seed": 0,
        "optim": {"lr": 0.001, "plateau_factor": 0.5},
        "data": {"batch_size": 2, "num_workers": 4, "generated": True},
        "paths": {"runs_dir": "/a/runs"},
        "pretrain": {"dataset": {"root": "/a/slakh", "precache": False, "sources": ["bass", "drums"]}},
        "logger": {"wandb": {"enabled": True}},
        "checkpoint_every_n_steps": 100,
        "curve": {"every_n_steps": 100},
    }
    now = {
        "seed": 0,
        "optim": {"lr": 0.01, "plateau_factor": 0.5},
        "data": {"batch_size": 3, "num_workers": 0, "generated": True},
        "paths": {"runs_dir": "/b/runs"},
        "pretrain": {"dataset": {"root": "/b/slakh", "precache": True, "sources": ["bass", "piano"]}},
        "logger": {"wandb": {"enabled": False}},
        "checkpoint_every_n_steps": 20,
        "curve": {"every_n_steps": 0},
        "init_from": "/m.safetensors",
    }
    assert differences(recorded, now) == [
        ("data.batch_size", 2, 3),
        ("init_from", "<unset>", "/m.safetensors"),
        ("optim.lr", 0.001, 0.01),
        ("pretrain.dataset.sources", ["bass", "drums"], ["bass", "piano"]),
    ]
    assert differences(recorded, recorded) == []
    # a run recorded before pretrain.objective existed was deep clustering: it reads as objective dc
    dc = {**recorded, "pretrain": {**recorded["pretrain"], "objective": "dc"}}
    assert differences(recorded, dc) == []
    mixit = {**recorded, "pretrain": {**recorded["pretrain"], "objective": "mixit"}}
    assert differences(recorded, mixit) == [("pretrain.objective", "dc", "mixit")]
    # a run recorded when the objective was part of the corpus's name is the same run today
    ds = recorded["pretrain"]["dataset"]
    before = {
        **recorded,
        "pretrain": {"name": "slakh_mixit", "objective": "mixit", "dataset": {**ds, "unlabeled": True}},
    }
    today = {**recorded, "pretrain": {"name": "slakh", "objective": "mixit", "dataset": ds}}
    assert differences(before, today) == []
    assert differences(before, {**today, "pretrain": {**today["pretrain"], "name": "musdb"}}) == [
        ("pretrain.name", "slakh", "musdb")
    ]
    assert free("data.num_workers") and free("downstream.dataset.root") and free("pretrain.dataset.musdb_root")
    assert not free("data.n_val") and not free("model.hidden_size") and not free("augment.pitch_semitones")


def test_finished_run_relaunched_with_a_change_refuses_and_rerun_starts_over(tmp_path):
    run = tmp_path / "runs" / "tiny" / "pretrain" / "slakh-none"
    assert train(tmp_path, *PRE).returncode == 0
    before = snapshot(run)

    p = train(tmp_path, *PRE, "optim.lr=0.002")  # (another seed is another replicate: its own folder)
    line = one_line(p)
    assert p.returncode == 2 and line.startswith(f"error: {run} was trained with other settings: optim.lr=0.002"), line
    assert "already finished" not in p.stdout + p.stderr
    assert snapshot(run) == before

    # settings that do not shape the weights may differ: the finished run is skipped as before
    free_changes = ["data.num_workers=1", "checkpoint_every_n_steps=3", "evaluate=false", "lock.heartbeat_s=5"]
    p = train(tmp_path, *PRE, *free_changes)
    assert p.returncode == 0 and "already finished; skipping" in p.stdout
    assert snapshot(run) == before

    # rerun=true trains it again with the new setting and records it; the same setting then skips
    p = train(tmp_path, *PRE, "optim.lr=0.002", "rerun=true")
    assert p.returncode == 0, p.stderr[-2000:]
    assert json.loads((run / "run_config.json").read_text())["config"]["optim"]["lr"] == 0.002
    assert "lr: 0.002" in (run / ".hydra" / "config.yaml").read_text()
    p = train(tmp_path, *PRE, "optim.lr=0.002")
    assert p.returncode == 0 and "already finished; skipping" in p.stdout
