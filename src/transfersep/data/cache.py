"""16 kHz mono float32 copies of each source, made once, read by memory map.

Decoding 44.1 kHz FLAC/WAV/AAC and resampling at every step would starve the GPU, so each
(track, source) is decoded once: its files are read (soundfile, or ffmpeg for .stem.mp4), downmixed
to mono (channel mean), resampled to 16 kHz with soxr and summed (shorter files padded with
silence), then stored as ``<cache_dir>/<corpus>/<key>.npy`` (corpus: musdb, slakh, bach10, ...; MUSDB+Slakh
shares the two corpora's folders). The key hashes the files' absolute
paths, sizes and modification times, so a changed file gets a new entry. Entries are written
atomically (temporary file + rename, under a lock so concurrent workers don't repeat the work);
nothing is ever written in the dataset folder. Excerpts are read with ``np.load(mmap_mode="r")``:
a 10-s read touches 640 kB, not the whole song.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from transfersep.audio import SAMPLE_RATE, AudioReadError, read, resample, to_mono
from transfersep.data.index import AudioRef
from transfersep.files import atomic_write

CACHE_VERSION = 1
MAX_OPEN = 256  # memory maps kept open per process


def cache_key(refs: Sequence[AudioRef]) -> str:
    items = []
    for r in sorted(refs, key=lambda r: (r.path, r.stream or 0)):
        st = os.stat(r.path)
        items.append([r.path, r.stream, st.st_size, st.st_mtime_ns])
    blob = json.dumps([CACHE_VERSION, SAMPLE_RATE, items]).encode()
    return hashlib.sha1(blob).hexdigest()[:24]


def decode(ref: AudioRef) -> np.ndarray:
    """One file as mono float32 at 16 kHz [N]; AudioReadError names truncated/corrupt files."""
    if ref.stream is not None:
        from transfersep.data.ffmpeg import decode_stream

        data, sr = decode_stream(ref)
    else:
        data, sr = read(ref.path)
        if sr != ref.sample_rate:
            raise AudioReadError(f"{ref.path}: sample rate changed since indexing ({ref.sample_rate} -> {sr}); re-run")
    # libsndfile reports the header's frame count; a truncated FLAC decodes fewer frames
    if ref.frames and data.shape[-1] < ref.frames - max(16, ref.frames // 1000):
        raise AudioReadError(
            f"{ref.path} is truncated: its header promises {ref.frames} frames, only {data.shape[-1]} decode; "
            "re-download or re-export the file"
        )
    return resample(to_mono(data), sr, SAMPLE_RATE)


class StemCache:
    """Maps a list of AudioRefs (one source of one track) to a read-only 16 kHz array [N]."""

    def __init__(self, cache_dir: str | os.PathLike, roots: Sequence[str] = ()):
        self.dir = Path(cache_dir).expanduser().resolve()
        for r in roots:  # the promise that no dataset folder is written to
            rp = Path(r).resolve()
            if self.dir == rp or rp in self.dir.parents:
                raise ValueError(
                    f"cache dir {self.dir} lies inside the dataset folder {rp}; set paths.cache_dir elsewhere"
                )
        self._open: OrderedDict[str, np.ndarray] = OrderedDict()
        self._keys: dict[tuple, str] = {}

    def __getstate__(self) -> dict:
        # DataLoader workers get a copy: open memory maps would pickle as whole arrays
        return {**self.__dict__, "_open": OrderedDict()}

    def path_for(self, refs: Sequence[AudioRef], corpus: str) -> Path:
        ident = tuple((r.path, r.stream) for r in refs)
        if ident not in self._keys:
            self._keys[ident] = cache_key(refs)
        return self.dir / (corpus or "misc") / f"{self._keys[ident]}.npy"

    def ensure(self, refs: Sequence[AudioRef], corpus: str) -> Path:
        """Make the cache entry for ``refs`` if it does not exist yet; return its path."""
        path = self.path_for(refs, corpus)
        if path.exists():
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.parent / f".{path.stem}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another worker may be making the same entry
            try:
                if not path.exists():
                    parts = [decode(r) for r in refs]
                    n = max(len(p) for p in parts)
                    total = np.zeros(n, dtype=np.float32)
                    for p in parts:
                        total[: len(p)] += p

                    def write(tmp: str) -> None:
                        with open(tmp, "wb") as f:
                            np.save(f, total)

                    atomic_write(path, write)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        try:
            os.unlink(path.parent / f".{path.stem}.lock")
        except OSError:
            pass
        return path

    def array(self, refs: Sequence[AudioRef], corpus: str) -> np.ndarray:
        """The 16 kHz mono sum of ``refs`` as a read-only memory map [N] (made on first use)."""
        path = self.ensure(refs, corpus)
        key = str(path)
        arr = self._open.get(key)
        if arr is None:
            arr = np.load(path, mmap_mode="r")
            self._open[key] = arr
            if len(self._open) > MAX_OPEN:
                self._open.popitem(last=False)
        else:
            self._open.move_to_end(key)
        return arr

    def read(self, refs: Sequence[AudioRef], start: int, n: int, corpus: str = "") -> np.ndarray:
        """Samples [start, start + n) of the source, zero outside the file; empty refs -> silence."""
        out = np.zeros(n, dtype=np.float32)
        if not refs:
            return out
        arr = self.array(refs, corpus)
        lo, hi = max(0, start), min(len(arr), start + n)
        if hi > lo:
            out[lo - start : hi - start] = arr[lo:hi]
        return out
