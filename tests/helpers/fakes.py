"""Stand-ins for cluster tools in tests that must not need a real SLURM."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def install_squeue(tmp_path: Path, monkeypatch, output: str) -> Path:
    """A stand-in `squeue` first on PATH that prints ``output`` (``%A|%i|%T`` lines) and exits 0."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "squeue"
    exe.write_text(f"#!/bin/sh\nprintf '{output}'\n")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return exe
