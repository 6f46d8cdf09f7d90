"""Fixtures of the eval tests; the synthetic study itself is in eval_synth.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval_synth import make_study


@pytest.fixture
def study(tmp_path: Path):
    def _make(drop: tuple = (), origins: bool = True) -> Path:
        make_study(tmp_path / "runs", drop, origins)
        return tmp_path / "runs"

    return _make
