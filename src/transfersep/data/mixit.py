"""Mixtures of two mixtures for MixIT pretraining (Wisdom et al. 2020).

Item ``i`` is {"mix": [N], "sources": [2, N]}: the two reference mixtures, excerpts of two
*different* tracks, each scaled by its own gain drawn uniformly in +-``gain_db``; ``mix`` is their
sum. Everything is drawn from ``base.seeded_rng(seed, split, i)``, so the training stream resumes
exactly and the validation list is the same for every model (``data.eval_seed``), as for
``mixing.ExcerptSet``. A track is chosen with probability proportional to its length, the second
among the other tracks; an excerpt that is silent (below -60 dBFS RMS) is redrawn from the same
stream, as mixing does. Pitch shift and time stretch, when the set's ``AugmentSpec`` asks for
them, are drawn and applied for each mixture excerpt on its own: the two mixtures are unrelated
recordings, so there is no common key or tempo to keep.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from transfersep.audio import SAMPLE_RATE
from transfersep.data.augment import PAD, AugmentSpec, pitch_tempo, realised_semitones
from transfersep.data.base import seeded_rng
from transfersep.data.cache import StemCache
from transfersep.data.index import DatasetError, Track
from transfersep.data.mixing import MAX_TRIES, SILENCE_RMS, draw_start, read_excerpt, track_samples

SOURCE_NAMES = ["mixture1", "mixture2"]


def track_refs(t: Track) -> list:
    """Every file of a track: an unlabeled track has one source, and a labeled one is mixed whole."""
    return [r for refs in t.sources.values() for r in refs]


class MixturePairs(Dataset):
    """``length`` items {"mix": [N], "sources": [2, N]}: two gained excerpts of two different tracks."""

    def __init__(
        self,
        tracks: Sequence[Track],
        cache: StemCache,
        seconds: float,
        seed: int,
        split: str,
        length: int,
        gain_db: float,
        augment: AugmentSpec | None = None,
        weights: Sequence[float] | None = None,
        root: str = "",
    ):
        self.tracks = list(tracks)
        self.source_names = list(SOURCE_NAMES)
        self.cache, self.seed, self.split, self.length = cache, int(seed), split, int(length)
        self.gain_db = float(gain_db)
        if not self.gain_db >= 0:
            raise DatasetError(f"pretrain.mixit.gain_db={gain_db}: must be >= 0 (gains are drawn in +-gain_db)")
        self.n = int(round(seconds * SAMPLE_RATE))
        self.augment = augment if augment is not None and augment.changes_audio else None
        self.refs = [track_refs(t) for t in self.tracks]
        self.lengths = np.array([track_samples(t) for t in self.tracks], dtype=np.int64)
        w = np.asarray(weights if weights is not None else self.lengths, dtype=np.float64)
        self.w = w * np.array([bool(r) for r in self.refs])
        if np.count_nonzero(self.w > 0) < 2:
            raise DatasetError(
                f"{root or 'the dataset'}: MixIT needs at least two tracks with audio in the {split} split "
                f"to mix two mixtures, found {np.count_nonzero(self.w > 0)}; add audio files"
            )

    def __len__(self) -> int:
        return self.length

    def describe(self, i: int) -> dict:
        """Where item ``i`` comes from: per mixture the track, start (16 kHz samples), the pitch
        shift as realised (semitones), the stretch rate and the gain (dB)."""
        plan, _ = self._draw(i)
        return plan

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        plan, raws = self._draw(i)
        rows = []
        for raw, (st, rate), g in zip(raws, plan["requested"], plan["gains_db"]):
            x = torch.from_numpy(raw[None]) if self.augment is None else pitch_tempo(raw[None], st, rate, self.n)
            rows.append(x.float() * (10.0 ** (g / 20.0)))
        sources = torch.cat(rows).float().contiguous()
        return {"mix": sources.sum(0), "sources": sources}

    def _draw(self, i: int) -> tuple[dict, list[np.ndarray]]:
        rng = seeded_rng(self.seed, self.split, i)
        picks, starts, shifts, raws = [], [], [], []
        for _ in range(2):
            w = self.w.copy()
            w[picks] = 0.0  # the second mixture comes from another track
            k, start, shift, raw = self._excerpt(rng, w / w.sum(), i)
            picks.append(k)
            starts.append(start)
            shifts.append(shift)
            raws.append(raw)
        gains = [float(g) for g in rng.uniform(-self.gain_db, self.gain_db, size=2)]
        plan = {
            "tracks": [self.tracks[k].name for k in picks],
            "starts": starts,
            "semitones": [realised_semitones(s) for s, _ in shifts],
            "rate": [r for _, r in shifts],
            "gains_db": gains,
            "requested": shifts,
        }
        return plan, raws

    def _excerpt(self, rng: np.random.Generator, p: np.ndarray, i: int) -> tuple[int, int, tuple, np.ndarray]:
        for _ in range(MAX_TRIES):
            shift = self.augment.draw(rng) if self.augment else (0.0, 1.0)
            k = int(rng.choice(len(self.tracks), p=p))
            start = draw_start(rng, self.n, self.lengths[k], shift[1])
            raw = read_excerpt(
                self.cache, self.refs[k], start, self.n, shift[1], self.tracks[k].corpus, bool(self.augment)
            )
            core = raw[PAD:-PAD] if self.augment else raw
            if float(np.dot(core, core)) >= SILENCE_RMS**2 * len(core):
                return k, start, shift, raw
        raise RuntimeError(
            f"{self.split} MixIT item {i}: {MAX_TRIES} excerpts in a row were silent; "
            "the dataset's files are (nearly) all silent — check the files"
        )
