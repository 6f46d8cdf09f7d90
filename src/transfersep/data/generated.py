"""A generated separation set (harmonic tones and noise bursts as stems).

It stands in for the real corpora where none are present (unit tests, CI, the SLURM grid test):
``data.generated=true`` keeps every grid key (so run directories, checkpoints and the stage logic
are exercised for real) but serves these excerpts with the configured dataset's source names.
Each source index has its own timbre so the task is learnable: even indices are harmonic tones in
a register that rises with the index, odd indices are band-passed noise bursts. A source is
silent in 10 % of excerpts so the losses' silent-source handling is exercised.

The other item kinds (``transfersep.data.registry.ITEMS``) are served as the real datasets serve them:
``pairs`` two independently generated mixtures (each the sum of its generated stems), each scaled
by a gain drawn uniformly in +-``gain_db`` (source names mixture1, mixture2); ``grouped`` one
generated mixture as its only source (``mix``). Their mixtures hold at least ``MIN_STEMS`` stems, a tone and
noise bursts, so that a mixture always has something to separate.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from transfersep.audio import SAMPLE_RATE
from transfersep.data.base import SeparationDataModule, seeded_rng

P_SILENT = 0.1
MIN_STEMS = 2


def _tone_notes(rng: np.random.Generator, n: int, k: int, sr: int) -> np.ndarray:
    out = np.zeros(n, dtype=np.float64)
    t = 0
    lo = 80.0 * (2.0**k)  # register rises by an octave per tonal source
    while t < n:
        dur = int(rng.uniform(0.15, 0.6) * sr)
        f0 = lo * 2 ** rng.uniform(0, 1.5)
        tt = np.arange(min(dur, n - t)) / sr
        note = sum((0.6**h) * np.sin(2 * np.pi * f0 * (h + 1) * tt + rng.uniform(0, 6.28)) for h in range(6))
        env = np.minimum(1.0, tt / 0.01) * np.exp(-tt * rng.uniform(1.0, 4.0))
        out[t : t + len(tt)] = note * env
        t += dur
    return out


def _noise_bursts(rng: np.random.Generator, n: int, k: int, sr: int) -> np.ndarray:
    out = np.zeros(n, dtype=np.float64)
    freqs = np.fft.rfftfreq(n, 1 / sr)
    centre = 1500.0 * (1.6**k)
    shape = np.exp(-0.5 * (np.log(np.maximum(freqs, 1) / centre) / 0.5) ** 2)
    noise = np.fft.irfft(np.fft.rfft(rng.standard_normal(n)) * shape, n)[:n]
    noise /= noise.std() + 1e-9
    period = int(rng.uniform(0.2, 0.5) * sr)
    decay = np.exp(-np.arange(period) / (0.04 * sr))
    for start in range(int(rng.uniform(0, period)), n, period):
        m = min(period, n - start)
        out[start : start + m] += noise[start : start + m] * decay[:m]
    return out


def make_sources(rng: np.random.Generator, n_sources: int, n: int, sr: int = SAMPLE_RATE) -> np.ndarray:
    """[C, n] float32 stems; at least one is non-silent."""
    stems = np.zeros((n_sources, n), dtype=np.float32)
    silent = rng.random(n_sources) < P_SILENT
    if silent.all():
        silent[rng.integers(n_sources)] = False
    for c in range(n_sources):
        if silent[c]:
            continue
        x = _tone_notes(rng, n, c // 2, sr) if c % 2 == 0 else _noise_bursts(rng, n, c // 2, sr)
        x *= 10 ** (rng.uniform(-12, 0) / 20) * 0.3 / (np.abs(x).max() + 1e-9)
        stems[c] = x
    return stems


class GeneratedExcerpts(Dataset):
    """``length`` excerpts; item ``i`` is a deterministic function of (seed, split, i).

    ``items`` stems: ``n_sources`` stems; pairs: two mixtures of ``n_sources`` stems, gained;
    grouped: one mixture of ``n_sources`` stems as a single source."""

    def __init__(
        self, n_sources: int, seconds: float, seed: int, split: str, length: int, items: str = "stems", gain_db=0.0
    ):
        self.n_sources, self.n = n_sources, int(round(seconds * SAMPLE_RATE))
        self.seed, self.split, self.length = seed, split, length
        self.items, self.gain_db = items, float(gain_db)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        rng = seeded_rng(self.seed, "generated-" + self.split, i)
        if self.items == "pairs":
            a, b = (make_sources(rng, self.n_sources, self.n).sum(0) for _ in range(2))
            gains = 10.0 ** (rng.uniform(-self.gain_db, self.gain_db, size=2) / 20.0)
            stems = np.stack([a * gains[0], b * gains[1]]).astype(np.float32)
        elif self.items == "grouped":
            stems = make_sources(rng, self.n_sources, self.n).sum(0, keepdims=True)
        else:
            stems = make_sources(rng, self.n_sources, self.n)
        sources = torch.from_numpy(stems)
        return {"mix": sources.sum(0), "sources": sources}


def build(
    source_names: Sequence[str],
    seconds: float,
    batch_size: int,
    total_steps: int,
    seed: int,
    n_val: int,
    n_test: int,
    num_workers: int = 0,
    items: str = "stems",
    gain_db: float = 0.0,
) -> SeparationDataModule:
    c = len(source_names)
    if items != "stems":
        c = max(c, MIN_STEMS)
        source_names = ["mixture1", "mixture2"] if items == "pairs" else ["mix"]
    mk = lambda s, split, n: GeneratedExcerpts(c, seconds, s, split, n, items, gain_db)  # noqa: E731
    # the test list depends on the dataset's seed only (not the run's), so every model pairs
    return SeparationDataModule(
        train=mk(seed, "train", 2**31 - 1),
        val=mk(0, "val", n_val),
        test=mk(0, "test", n_test),
        source_names=source_names,
        batch_size=batch_size,
        total_steps=total_steps,
        num_workers=num_workers,
        description={"dataset": "generated", "sources": list(source_names), "items": items},
    )
