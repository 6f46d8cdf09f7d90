"""Session-wide tiny dataset trees (see datatrees.py) and an independent 16 kHz reference reader."""

from __future__ import annotations

import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from scipy.signal import correlate, resample_poly

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
        }

    def __missing__(self, name: str) -> Path:
        if name == "musdb_mp4" and shutil.which("ffmpeg") is None:
            pytest.skip("ffmpeg is not installed")
        self[name] = self.makers[name]()
        return self[name]


@pytest.fixture(scope="session")
def trees(tmp_path_factory) -> Trees:
    return Trees(tmp_path_factory.mktemp("datasets"))


def reference_16k(paths: list[str]) -> np.ndarray:
    """Sum of files as 16 kHz mono by an independent route (soundfile + scipy polyphase)."""
    parts = []
    for p in paths:
        x, sr = sf.read(p, dtype="float64", always_2d=True)
        ratio = Fraction(16000, sr)
        parts.append(resample_poly(x.mean(axis=1), ratio.numerator, ratio.denominator))
    n = max(len(p) for p in parts)
    return sum(np.pad(p, (0, n - len(p))) for p in parts)


def best_match(excerpt: np.ndarray, reference: np.ndarray) -> tuple[int, float]:
    """(lag, normalised correlation) of ``excerpt`` inside ``reference`` (lag >= 0)."""
    ref = np.pad(reference, (0, max(0, len(excerpt) - len(reference) + 1)))
    c = correlate(ref, excerpt, mode="valid")
    lag = int(np.argmax(c))
    seg = ref[lag : lag + len(excerpt)]
    denom = np.linalg.norm(seg) * np.linalg.norm(excerpt) + 1e-12
    return lag, float(c[lag] / denom)
