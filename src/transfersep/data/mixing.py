"""On-the-fly mixing of 16 kHz mono excerpts (paper §3.1).

- coherent: every source of the excerpt comes from one track at one time (a real mixture);
- incoherent: each source from an independently chosen track (among the tracks that have it) and
  an independently chosen time.

Item ``i`` of a set is a deterministic function of (seed, split, i) (``base.seeded_rng``): the
training stream resumes exactly, and the validation / test lists are the same for every model
(their seed is ``data.eval_seed``, not the run's). A track is chosen with probability proportional
to its length (every second of audio equally likely; ``weights`` overrides), a start uniformly.
An excerpt whose sources are all silent (RMS below -60 dBFS) is not served: the next candidate of
the same random stream is drawn instead. Tracks shorter than the excerpt are zero-padded.
With augmentation, one (pitch, rate) pair is drawn per excerpt in coherent mixing (the stems stay
in tune and in time with each other) and one per source in incoherent mixing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from transfersep.audio import SAMPLE_RATE
from transfersep.data.augment import PAD, AugmentSpec, pitch_tempo, realised_semitones, source_length
from transfersep.data.base import seeded_rng
from transfersep.data.cache import StemCache
from transfersep.data.index import Track

SILENCE_RMS = 10 ** (-60 / 20)
MAX_TRIES = 1000
MODES = ("coherent", "incoherent")


def track_samples(t: Track) -> int:
    """Length of the track at 16 kHz, from the headers (the longest file)."""
    return max(
        (math.ceil(r.frames * SAMPLE_RATE / r.sample_rate) for refs in t.sources.values() for r in refs), default=0
    )


def draw_start(rng: np.random.Generator, n: int, track_len: int, rate: float) -> int:
    """A uniform start (16 kHz samples) of an excerpt of ``n`` samples at stretch ``rate`` in a track."""
    span = int(math.ceil(n * rate))
    return int(rng.integers(0, max(0, int(track_len) - span) + 1))


def read_excerpt(cache: StemCache, refs, start: int, n: int, rate: float, corpus: str, augment: bool) -> np.ndarray:
    """[L] the summed files ``refs`` from ``start``: ``n`` samples, or ``source_length(n, rate)`` with
    ``PAD`` samples of context on each side when the excerpt is augmented afterwards."""
    if augment:
        return cache.read(refs, start - PAD, source_length(n, rate), corpus)
    return cache.read(refs, start, n, corpus)


class ExcerptSet(Dataset):
    """``length`` excerpts {"mix": [N], "sources": [C, N]} mixed from ``tracks``."""

    def __init__(
        self,
        tracks: Sequence[Track],
        source_names: Sequence[str],
        cache: StemCache,
        seconds: float,
        mode: str,
        seed: int,
        split: str,
        length: int,
        augment: AugmentSpec | None = None,
        weights: Sequence[float] | None = None,
    ):
        if mode not in MODES:
            raise ValueError(f"mixing mode must be one of {MODES}, not {mode!r}")
        self.source_names = list(source_names)
        self.tracks = list(tracks)
        self.cache, self.mode, self.seed, self.split, self.length = cache, mode, int(seed), split, int(length)
        self.n = int(round(seconds * SAMPLE_RATE))
        self.augment = augment if augment is not None and augment.changes_audio else None
        self.lengths = np.array([track_samples(t) for t in self.tracks], dtype=np.int64)
        w = np.asarray(weights if weights is not None else self.lengths, dtype=np.float64)
        has_any = np.array([any(t.sources.get(s) for s in self.source_names) for t in self.tracks], dtype=bool)
        self._p_any = self._probs(w * has_any, "any source")
        # incoherent mixing draws source c only from tracks that have it
        self._p_src = [
            self._probs(w * np.array([t.has(s) for t in self.tracks]), s) if mode == "incoherent" else None
            for s in self.source_names
        ]

    def _probs(self, w: np.ndarray, what: str) -> np.ndarray:
        total = w.sum()
        if total <= 0:
            raise ValueError(
                f"{self.split} set: no track has {what} ({len(self.tracks)} tracks) — "
                "check the dataset root and the source names"
            )
        return w / total

    def __len__(self) -> int:
        return self.length

    def describe(self, i: int) -> dict:
        """Where excerpt ``i`` comes from: per source the track, start sample (16 kHz), the pitch
        shift as realised (semitones) and the stretch rate."""
        plan, _ = self._draw(i)
        return plan

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        plan, raw = self._draw(i)
        if self.augment is None:
            sources = torch.from_numpy(raw)
        elif self.mode == "coherent":  # one shift for all stems: the mixture stays musical
            sources = pitch_tempo(raw, plan["requested"][0][0], plan["rate"][0], self.n)
        else:
            sources = torch.cat(
                [
                    pitch_tempo(raw[c : c + 1], plan["requested"][c][0], plan["rate"][c], self.n)
                    for c in range(len(self.source_names))
                ]
            )
        sources = sources.float().contiguous()
        return {"mix": sources.sum(0), "sources": sources}

    def _draw(self, i: int) -> tuple[dict, np.ndarray]:
        rng = seeded_rng(self.seed, self.split, i)
        n_src = len(self.source_names)
        for _ in range(MAX_TRIES):
            if self.mode == "coherent":
                shifts = [self.augment.draw(rng) if self.augment else (0.0, 1.0)] * n_src
                k = int(rng.choice(len(self.tracks), p=self._p_any))
                picks = [k] * n_src
                start = self._start(rng, k, shifts[0][1])
                starts = [start] * n_src
            else:
                shifts = [self.augment.draw(rng) if self.augment else (0.0, 1.0) for _ in range(n_src)]
                picks = [int(rng.choice(len(self.tracks), p=p)) for p in self._p_src]
                starts = [self._start(rng, k, shifts[c][1]) for c, k in enumerate(picks)]
            raw = self._read(picks, starts, [r for _, r in shifts])
            core = raw[:, PAD:-PAD] if self.augment else raw
            if np.einsum("ij,ij->i", core, core).max() >= SILENCE_RMS**2 * core.shape[1]:
                plan = {
                    "tracks": [self.tracks[k].name for k in picks],
                    "starts": starts,
                    "semitones": [realised_semitones(s) for s, _ in shifts],
                    "rate": [r for _, r in shifts],
                    "requested": shifts,
                }
                return plan, raw
        raise RuntimeError(
            f"{self.split} excerpt {i}: {MAX_TRIES} candidates in a row were silent in every source; "
            "the dataset's stems are (nearly) all silent — check the files"
        )

    def _start(self, rng: np.random.Generator, k: int, rate: float) -> int:
        return draw_start(rng, self.n, self.lengths[k], rate)

    def _read(self, picks: Sequence[int], starts: Sequence[int], rates: Sequence[float]) -> np.ndarray:
        """[C, L]: L = n, or source_length(n, rate) with PAD context when augmenting."""
        rows = []
        for c, (k, s, r) in enumerate(zip(picks, starts, rates)):
            t = self.tracks[k]
            refs = t.sources.get(self.source_names[c], [])
            rows.append(read_excerpt(self.cache, refs, s, self.n, r, t.corpus, self.augment is not None))
        if self.augment and self.mode == "incoherent":  # per-source rates: pad rows to one length
            width = max(len(r) for r in rows)
            rows = [np.pad(r, (0, width - len(r))) for r in rows]
        return np.stack(rows)
