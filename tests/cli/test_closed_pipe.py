"""``transfersep <verb> ... | head``: a reader that closes the pipe early ends the command quietly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from project import ROOT
from transfersep.cli import VERBS


def closed_pipe(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run ``transfersep ARGS`` with its stdout a pipe whose reader is gone before it writes a byte
    (the parent closes its end at once; the child is still importing), as ``| head`` is once done."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run(
            [sys.executable, "-m", "transfersep.cli", *args],
            cwd=cwd,
            env=env,
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=300,
        )
    finally:
        os.close(write)


def quiet(p: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in p.stderr and "BrokenPipeError" not in p.stderr, p.stderr[-2000:]
    assert p.returncode in (0, 141), (p.returncode, p.stderr[-2000:])


@pytest.mark.parametrize("verb", list(VERBS))
def test_every_verbs_help_ends_quietly_on_a_closed_pipe(verb: str) -> None:
    quiet(closed_pipe([verb, "-h"], ROOT))


def test_status_and_data_end_quietly_on_a_closed_pipe(tmp_path: Path) -> None:
    study = tmp_path / "study"
    study.mkdir()
    quiet(closed_pipe(["status", str(study), "--full-grid"], ROOT))
    song = tmp_path / "stems" / "train" / "song"
    song.mkdir(parents=True)
    for name in ("vox", "gtr"):
        sf.write(song / f"{name}.wav", np.zeros(1600, np.float32), 16_000)
    patterns = 'patterns={vox: ["vox*"], gtr: ["gtr*"]}'
    quiet(closed_pipe(["data", "stems", str(tmp_path / "stems"), "--sources", "vox,gtr", "--option", patterns], ROOT))
