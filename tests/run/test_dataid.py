"""A run's data is part of its identity: after a stem is added to a song, the same command is
refused in one line naming the file, never skipped as finished; rerun=true trains on the new data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import datatrees
from project import ROOT


def _stems(root: Path) -> Path:
    for i in range(4):
        for stem in ("vocals", "gtr"):
            if (i, stem) != (3, "gtr"):  # song 3 lacks its guitar: left out with missing_sources=skip
                datatrees.write(root / f"song{i}" / f"{stem}.wav", datatrees.noise(f"{i}{stem}", 1.5, 16000), 16000)
    return root


def _train(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable, "-m", "transfersep.cli", "train", "experiment=tiny", "logger=csv", "pretrain=none",
        "downstream=stems", f"paths.stems={tmp_path / 'stems'}", f"paths.runs_dir={tmp_path / 'runs'}",
        f"paths.cache_dir={tmp_path / 'cache'}", "downstream.dataset.sources=[lead,rhythm]",
        "downstream.dataset.patterns={lead: ['*vocals*'], rhythm: ['*gtr*']}",
        "downstream.dataset.missing_sources=skip", "budget.pretrain=2", "budget.finetune=2", *extra,
    ]  # fmt: skip
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_changed_data_is_refused_in_one_line_never_skipped(tmp_path: Path) -> None:
    stems = _stems(tmp_path / "stems")
    assert (p := _train(tmp_path)).returncode == 0, p.stderr[-3000:]
    run = tmp_path / "runs" / "tiny" / "baseline" / "stems"
    recorded = json.loads((run / "run_config.json").read_text())["data"]
    assert recorded["files"] == 6 and "song3/gtr.wav" not in recorded["entries"]
    again = _train(tmp_path)
    assert again.returncode == 0 and "already finished; skipping" in again.stdout + again.stderr

    datatrees.write(stems / "song3" / "gtr.wav", datatrees.noise("3gtr", 1.5, 16000), 16000)
    p = _train(tmp_path)
    assert p.returncode == 2
    lines = [ln for ln in (p.stdout + p.stderr).splitlines() if ln.strip()]
    assert len(lines) == 1 and "trained on other data" in lines[0] and "2 file(s) added" in lines[0], lines
    assert "song3/gtr.wav" in lines[0] and "rerun=true" in lines[0]
    assert "skipping" not in p.stdout + p.stderr
    assert json.loads((run / "status.json").read_text())["state"] == "finished"  # refused: nothing changed

    p = _train(tmp_path, "rerun=true")
    assert p.returncode == 0, p.stderr[-3000:]
    assert json.loads((run / "run_config.json").read_text())["data"]["files"] == 8
    assert "already finished" in (q := _train(tmp_path)).stdout + q.stderr
