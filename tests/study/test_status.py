"""The status command on hand-made run directories: every state, liveness through a stand-in
`squeue` and real processes, log paths, narrowing, exit codes."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest

from fakes import install_squeue
from project import grid_counts
from transfersep.cli import main as cli_main
from transfersep.study.status import study_status

HOST = socket.gethostname()


def make_run(study: Path, subdir: str, state: str | None, final: bool = False, **fields) -> Path:
    run = study / subdir
    run.mkdir(parents=True)
    (run / "train.log").write_text("log\n")
    if state is not None:
        st = {
            "state": state,
            "grid_point": {},
            "log": str(run / "train.log"),
            "error": None,
            "host": HOST,
            "pid": None,
            "slurm_job_id": None,
            **fields,
        }
        (run / "status.json").write_text(json.dumps(st))
    if final:
        (run / "final.ckpt").write_bytes(b"x")
    return run


@pytest.fixture
def fake_squeue(tmp_path: Path, monkeypatch) -> Path:
    """`squeue -h -o %A|%i|%T` of a cluster that knows jobs 500 (running) and 601 = array 600_3."""
    return install_squeue(tmp_path, monkeypatch, "500|500|RUNNING\\n601|600_3|PENDING\\n")


def test_every_state(tmp_path: Path, fake_squeue: Path) -> None:
    study = tmp_path / "study"
    sleeper = subprocess.Popen(["sleep", "60"])
    dead = subprocess.Popen(["true"])
    dead.wait()
    try:
        make_run(study, "pretrain/musdb-none", "finished", final=True)
        make_run(study, "pretrain/musdb-pitch", "finished")  # final.ckpt gone
        make_run(study, "pretrain/slakh-none", "failed", error="ValueError: boom\nsecond line")
        held = make_run(study, "pretrain/slakh-pitch", "running", pid=sleeper.pid)
        (held / "lock.json").write_text(
            json.dumps({"host": HOST, "pid": sleeper.pid, "slurm_job_id": None, "token": "t", "heartbeat": 0})
        )
        make_run(study, "pretrain/both-none", "running", pid=dead.pid)
        make_run(study, "pretrain/both-pitch", "running", slurm_job_id="500")
        make_run(
            study,
            "pretrain/musdb-stretch",
            "running",
            slurm_job_id="601",
            slurm_array_id="600_3",
            submitit_logs=[str(tmp_path / "600_3_0_log.out"), str(tmp_path / "nope.err")],
        )
        (tmp_path / "600_3_0_log.out").write_text("")
        make_run(
            study,
            "pretrain/musdb-incoherent",
            "running",
            slurm_job_id="777",
            submitit_logs=[str(tmp_path / "600_3_0_log.out")],
        )
        make_run(study, "finetune/slakh-none-whole-stems", "finished", final=True)  # outside the grid
        rows = {r.subdir: r for r in study_status(study, ["pretrain", "finetune"], full=True)}
    finally:
        sleeper.kill()
        sleeper.wait()
    state = {k: r.state for k, r in rows.items()}
    assert state["pretrain/musdb-none"] == "finished"
    assert state["pretrain/musdb-pitch"] == "interrupted"
    assert state["pretrain/slakh-none"] == "failed" and "boom" in rows["pretrain/slakh-none"].detail
    assert rows["pretrain/slakh-none"].logs == [str(study / "pretrain/slakh-none/train.log")]
    assert state["pretrain/slakh-pitch"] == "running"
    assert f"lock: host {HOST} pid {sleeper.pid}, heartbeat " in rows["pretrain/slakh-pitch"].detail
    assert state["pretrain/both-none"] == "interrupted" and f"process {dead.pid}" in rows["pretrain/both-none"].detail
    assert state["pretrain/both-pitch"] == "running" and "RUNNING" in rows["pretrain/both-pitch"].detail
    assert state["pretrain/musdb-stretch"] == "running" and "600_3 PENDING" in rows["pretrain/musdb-stretch"].detail
    gone = rows["pretrain/musdb-incoherent"]
    assert gone.state == "interrupted" and "777 no longer exists" in gone.detail
    assert gone.logs == [str(study / "pretrain/musdb-incoherent/train.log"), str(tmp_path / "600_3_0_log.out")]
    assert state["pretrain/both-stretch"] == "missing"
    assert len([r for r in rows.values() if r.in_grid]) == 18 + 3 * 108  # fine-tunes at 3 pretraining lengths
    assert not rows["finetune/slakh-none-whole-stems"].in_grid


def test_unanswered_squeue_leaves_running_unverified(tmp_path: Path, fake_squeue: Path) -> None:
    fake_squeue.write_text("#!/bin/sh\necho 'slurm_load_jobs error: Unable to contact slurm controller' >&2\nexit 1\n")
    make_run(tmp_path, "baseline/bach10", "running", slurm_job_id="42")
    (row,) = [r for r in study_status(tmp_path, ["baseline"]) if r.subdir == "baseline/bach10"]
    assert row.state == "running" and "not verified" in row.detail


def test_cli_exit_codes_filter_and_narrowing(tmp_path: Path, capsys) -> None:
    for d in ("bach10", "dagstuhl"):
        make_run(tmp_path, f"baseline/{d}", "finished", final=True)
    assert cli_main(["status", str(tmp_path), "--sweeps", "baseline", "downstream=bach10,dagstuhl"]) == 0
    out = capsys.readouterr().out
    assert "2 runs - 2 finished" in out
    assert cli_main(["status", str(tmp_path), "--sweeps", "baseline"]) == 0  # what the study launched
    assert "2 runs - 2 finished" in capsys.readouterr().out
    assert cli_main(["status", str(tmp_path), "--sweeps", "baseline", "--full-grid"]) == 1  # remixpacks is missing
    argv = ["status", str(tmp_path), "--sweeps", "baseline", "--only", "missing", "--json", "--full-grid"]
    assert cli_main(argv) == 1
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [(r["subdir"], r["state"], r["grid_point"]["stage"]) for r in rows] == [
        ("baseline/remixpacks", "missing", "baseline")
    ]
    assert cli_main(["status", str(tmp_path / "nope")]) == 2
    assert cli_main(["status", str(tmp_path), "--only", "done"]) == 2


def test_a_zero_shot_probe_is_finished_by_its_result(tmp_path: Path, fake_squeue: Path) -> None:
    """The probe trains nothing: its result.json, not a final.ckpt, says it is complete."""
    study = tmp_path / "s"
    gp = {"stage": "zeroshot", "pretrain": "slakh", "augment": "none", "finetune": "zeroshot", "downstream": "bach10"}
    done = make_run(study, "zeroshot/slakh-none-bach10", "finished", grid_point=gp)
    (done / "result.json").write_text("{}")
    make_run(study, "zeroshot/slakh-none-dagstuhl", "finished", grid_point={**gp, "downstream": "dagstuhl"})
    narrow = ["pretrain=slakh", "objective=dc", "augment=none"]
    rows = {r.subdir: r for r in study_status(study, ["zeroshot"], narrow, full=True)}
    assert rows["zeroshot/slakh-none-bach10"].state == "finished"
    gone = rows["zeroshot/slakh-none-dagstuhl"]
    assert gone.state == "interrupted" and "result.json is gone" in gone.detail
    assert rows["zeroshot/slakh-none-remixpacks"].state == "missing"
    assert len([r for r in rows.values() if r.in_grid]) == 3 * 3  # 3 sets x 3 pretraining lengths


def test_a_folder_of_several_studies_is_listed_and_refused(tmp_path: Path, capsys) -> None:
    runs = tmp_path / "runs"
    make_run(runs / "paper", "baseline/bach10", "finished", final=True)
    make_run(runs / "demo", "pretrain/slakh-none", "finished", final=True)
    assert cli_main(["status", str(runs), "--sweeps", "baseline"]) == 2
    cap = capsys.readouterr()
    assert cap.out == "" and len(cap.err.strip().splitlines()) == 1
    assert "2 studies (demo, paper)" in cap.err and str(runs / "demo") in cap.err
    # one study below the folder: that study, not the folder's (empty) grid
    other = tmp_path / "one"
    make_run(other / "paper", "baseline/bach10", "finished", final=True)
    assert cli_main(["status", str(other), "--sweeps", "baseline", "downstream=bach10"]) == 0
    assert capsys.readouterr().out.startswith(f"{other / 'paper'}: 1 runs - 1 finished")


def _gp(stage: str, pretrain: str, augment: str, finetune: str, downstream: str) -> dict:
    return {"stage": stage, "pretrain": pretrain, "augment": augment, "finetune": finetune, "downstream": downstream}


def test_status_expects_what_the_study_launched(tmp_path: Path, capsys) -> None:
    """A five-run study (one pretraining, its zero-shot probe, two fine-tunes, the baseline) is
    complete; the grid (sweeps/grid.yaml) only with --full-grid."""
    study = tmp_path / "tiny"
    runs = {
        "pretrain/slakh-none": _gp("pretrain", "slakh", "none", "none", "none"),
        "zeroshot/slakh-none-bach10": _gp("zeroshot", "slakh", "none", "zeroshot", "bach10"),
        "finetune/slakh-none-whole-bach10": _gp("finetune", "slakh", "none", "whole", "bach10"),
        "finetune/slakh-none-mask-bach10": _gp("finetune", "slakh", "none", "mask", "bach10"),
        "baseline/bach10": _gp("baseline", "none", "none", "whole", "bach10"),
    }
    for sub, gp in runs.items():
        run = make_run(study, sub, "finished", final=True, grid_point=gp)
        (run / "result.json").write_text("{}")
    assert cli_main(["status", str(study)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{study}: 5 runs - 5 finished\n")
    assert sorted(ln.split()[1] for ln in out.splitlines()[2:]) == sorted(runs)
    assert cli_main(["status", str(study), "--full-grid"]) == 1
    # the paper's 123 at the end point, with the probes and fine-tunes at every length and objective
    total = grid_counts()["total"]
    assert capsys.readouterr().out.startswith(f"{study}: {total} runs - 5 finished, {total - 5} missing\n")
    # a grid point of what was launched that never started is missing: the baseline of bach10
    for f in ("status.json", "final.ckpt", "result.json"):
        (study / "baseline/bach10" / f).unlink()
    assert cli_main(["status", str(study), "--only", "missing"]) == 1
    out = capsys.readouterr().out
    assert "5 runs - 4 finished, 1 missing" in out and "missing   baseline/bach10" in out


def test_a_study_that_launched_nothing_says_so(tmp_path: Path, capsys) -> None:
    (tmp_path / "empty" / "pretrain").mkdir(parents=True)
    assert cli_main(["status", str(tmp_path / "empty")]) == 1
    out = capsys.readouterr().out
    assert (
        out.strip()
        == f"{tmp_path / 'empty'}: no run launched yet; --full-grid lists every grid point of sweeps/grid.yaml"
    )


def test_a_fine_tune_from_a_model_file_expects_no_pretraining_but_its_baseline(tmp_path: Path, capsys) -> None:
    """`init_from=model.safetensors downstream=stems`: the report expects the stems' baseline and no
    pretraining run (the model came from a file); status lists the same."""
    study = tmp_path / "paper"
    package = {"kind": "package", "path": "/models/demo-slakh.safetensors", "weights_sha256": None}
    run = make_run(
        study,
        "finetune/slakh-none-whole-stems",
        "finished",
        final=True,
        grid_point=_gp("finetune", "slakh", "none", "whole", "stems"),
        parent=package,
    )
    (run / "result.json").write_text("{}")
    assert cli_main(["status", str(study)]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"{study}: 2 runs - 1 finished, 1 missing\n"), out
    assert "pretrain/slakh-none" not in out and "missing   baseline/stems" in out
    base = make_run(
        study, "baseline/stems", "finished", final=True, grid_point=_gp("baseline", "none", "none", "whole", "stems")
    )
    (base / "result.json").write_text("{}")
    assert cli_main(["status", str(study)]) == 0
    assert capsys.readouterr().out.startswith(f"{study}: 2 runs - 2 finished\n")
