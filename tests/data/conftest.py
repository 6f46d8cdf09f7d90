"""Session-wide tiny dataset trees (see datatrees.py) and an independent 16 kHz reference reader."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

import datatrees

torch.set_num_threads(1)


class Trees(dict):
    """Dataset name -> root of its tiny tree, built on first use (once per test session)."""

    def __init__(self, base: Path):
        super().__init__()
        self.base = base
        self.makers = {
            "musdb": lambda: datatrees.musdb_hq(base / "musdb18hq"),
            "slakh": lambda: datatrees.slakh_redux(base / "slakh2100_flac_redux"),
            "slakh_original": lambda: datatrees.slakh_original(base / "slakh2100_flac"),
            "babyslakh": lambda: datatrees.babyslakh(base / "babyslakh_16k"),
            "bach10": lambda: datatrees.bach10(base / "Bach10"),
            "dagstuhl": lambda: datatrees.dagstuhl(base / "DagstuhlChoirSet_V1.2.3"),
            "remixpacks": lambda: datatrees.remixpacks(base / "remixpacks"),
            "musdb_mp4": lambda: datatrees.musdb_stem_mp4(self["musdb"], base / "musdb18"),
            "librimix": lambda: datatrees.librimix(base / "LibriMix"),
            "wsj0mix": lambda: datatrees.wsj0mix(base / "wsj0-mix"),
        }

    def __missing__(self, name: str) -> Path:
        if name == "musdb_mp4" and shutil.which("ffmpeg") is None:
            pytest.skip("ffmpeg is not installed")
        self[name] = self.makers[name]()
        return self[name]


@pytest.fixture(scope="session")
def trees(tmp_path_factory) -> Trees:
    return Trees(tmp_path_factory.mktemp("datasets"))
