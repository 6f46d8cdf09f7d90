"""A Hydra multirun with the basic launcher: failed jobs never stop the rest of the grid, every job
is its own W&B run (offline), a relaunch skips what finished, and the status command sees it all.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from project import ROOT

# pretrain=musdb: fine-tunes whose pretraining never ran (they fail at once); pretrain=none: baselines
GRID = ["pretrain=musdb,none", "downstream=bach10,dagstuhl"]
COMMON = ["experiment=tiny", "data.generated=true", "budget.pretrain=2", "budget.finetune=2"]


def multirun(runs: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "WANDB_DISABLE_CODE": "true",
    }
    cmd = [sys.executable, "train.py", "-m", *GRID, *COMMON, f"paths.runs_dir={runs}", *extra]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


def status(run: Path) -> dict:
    return json.loads((run / "status.json").read_text())


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    runs = tmp_path_factory.mktemp("runs")
    return runs / "tiny", multirun(runs)


def test_failed_jobs_do_not_stop_the_grid(study) -> None:
    study_dir, p = study
    out = p.stdout + p.stderr
    assert p.returncode == 2, "a multirun with failed jobs must exit non-zero"
    assert "Traceback" not in out
    assert "2 job(s) failed" in p.stderr
    # Hydra ran the jobs in this order: both failures came first, the baselines still ran after
    order = [
        out.index(f"#{i} : pretrain={p} downstream={d}")
        for i, (p, d) in enumerate(
            [("musdb", "bach10"), ("musdb", "dagstuhl"), ("none", "bach10"), ("none", "dagstuhl")]
        )
    ]
    assert order == sorted(order)
    for d in ("bach10", "dagstuhl"):
        failed = status(study_dir / "finetune" / f"musdb-none-whole-{d}")
        assert failed["state"] == "failed"
        assert "transfersep train pretrain=musdb augment=none study=tiny experiment=tiny" in failed["error"]
        base = study_dir / "baseline" / d
        assert status(base)["state"] == "finished" and (base / "final.ckpt").exists()


def test_every_job_is_its_own_wandb_run(study) -> None:
    from omegaconf import OmegaConf

    from transfersep.run.loggers import wandb_run_id
    from transfersep.run.plan import Plan
    from transfersep.run.point import GridPoint

    study_dir, _ = study
    cfg = OmegaConf.create({"logger": {"wandb": {"project": "transfersep"}}, "study": "tiny"})
    ids = {
        d: wandb_run_id(cfg, Plan(GridPoint("none", "none", "whole", d), "whole", study_dir / "baseline" / d, 4))
        for d in ("bach10", "dagstuhl")
    }
    assert ids["bach10"] != ids["dagstuhl"]
    for d, other in (("bach10", "dagstuhl"), ("dagstuhl", "bach10")):
        run = study_dir / "baseline" / d
        (offline,) = (run / "wandb").glob("offline-run-*")  # exactly one W&B run per job
        assert offline.name.endswith(f"-{ids[d]}")
        # the run's records: its own id, name, group, job type, tags and resolved config; nothing
        # of the other job of the same process (the command line, in the metadata, names both)
        (log,) = offline.glob("run-*.wandb")
        data = log.read_bytes()
        for needle in (
            ids[d],
            f"tiny/baseline/{d}",
            "tiny/none-none",
            f"downstream={d}",
            "stage=baseline",
            "study=tiny",
            "data_resolved",
        ):
            assert needle.encode() in data, needle
        for needle in (ids[other], f"tiny/baseline/{other}"):
            assert needle.encode() not in data, needle


def test_status_command_and_relaunch(study) -> None:
    from transfersep.cli import main as cli_main

    study_dir, _ = study
    narrow = [
        "--sweeps",
        "finetune,baseline",
        "pretrain=musdb",
        "augment=none",
        "finetune=whole",
        "downstream=bach10,dagstuhl",
    ]
    rows = _status_json(lambda argv: cli_main(["status", *argv]), [str(study_dir), "--json", *narrow])
    assert {r["subdir"]: r["state"] for r in rows} == {
        "finetune/musdb-none-whole-bach10": "failed",
        "finetune/musdb-none-whole-dagstuhl": "failed",
        "baseline/bach10": "finished",
        "baseline/dagstuhl": "finished",
    }
    for r in rows:
        if r["state"] == "failed":
            assert "transfersep train pretrain=musdb" in r["detail"]
            assert str(study_dir / r["subdir"] / "train.log") in r["logs"]
    assert cli_main(["status", str(study_dir), *narrow]) == 1  # not all finished

    failed_pid = status(study_dir / "finetune" / "musdb-none-whole-bach10")["pid"]
    p = multirun(study_dir.parent)
    out = p.stdout + p.stderr
    assert out.count("already finished; skipping") == 2  # the baselines
    again = status(study_dir / "finetune" / "musdb-none-whole-bach10")
    assert again["state"] == "failed" and again["pid"] != failed_pid  # retried, failed again


def _status_json(status_main, argv: list[str]) -> list[dict]:
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        status_main(argv)
    return [json.loads(line) for line in buf.getvalue().splitlines()]
