"""Loader throughput: ten-second training excerpts per second for ONE worker, per augment setting.

``python -m transfersep.bench.data [--tracks 6 --track-seconds 60 --repeats 5 --samples 40] [--bootstrap]``
writes a generated Slakh-layout tree (44.1 kHz mono FLAC stems, metadata.yaml) to a temporary
folder, fills the 16 kHz cache (a one-time cost, not timed), then times the training set in a
single process (``num_workers=0``: the rate one DataLoader worker sustains) through a DataLoader
with batches of 8, for every augmentation of the study's grid (sweeps/grid.yaml). Prints JSON:
{setting: {"median": samples/s, "min": .., "max": .., "cpu_median": .., "repeats": n}, ...}:
``median/min/max`` are wall-clock rates; ``cpu_median`` divides by the process's CPU time instead,
which is what one worker sustains on a core of its own (on a machine shared with other jobs the
wall-clock rate understates it).
``--bootstrap`` times the bootstrapped-DC pretraining loader instead (``bench_bootstrap``).
The paper's GPU step needs ~5 batches/s x 24 = 120 samples/s, i.e. >= 20 per worker with 6-8 workers.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import yaml
from torch.utils.data import DataLoader

from transfersep.data import slakh
from transfersep.data.augment import AugmentSpec
from transfersep.data.base import keep_freed_memory
from transfersep.data.cache import StemCache
from transfersep.data.mixing import ExcerptSet
from transfersep.data.registry import precache


def settings() -> dict[str, AugmentSpec]:
    """Every augmentation of the study's grid (``sweeps/grid.yaml``), as its config group file
    ``conf/augment/<name>.yaml`` asks for it."""
    from omegaconf import OmegaConf

    from transfersep.run.config import conf_dir
    from transfersep.study.grid import load_grid

    aug = conf_dir() / "augment"
    return {a: AugmentSpec.from_cfg(OmegaConf.load(aug / f"{a}.yaml")) for a in load_grid().axes["augment"]}


CLASSES = (("Bass", 33, False), ("Drums", 128, True), ("Piano", 0, False), ("Guitar", 26, False))


def make_tree(root: Path, n_tracks: int, seconds: float, sr: int = 44100, seed: int = 0) -> Path:
    """A Slakh2100-redux-shaped tree of ``n_tracks`` training tracks with harmonic-tone stems."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    for k in range(n_tracks):
        d = root / "train" / f"Track{k + 1:05d}"
        (d / "stems").mkdir(parents=True, exist_ok=True)
        meta = {}
        for j, (cls, prog, drum) in enumerate(CLASSES):
            f0 = 55.0 * 2 ** rng.uniform(0, 4)
            x = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 6)) * 0.1
            x *= 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.5, 4) * t) ** 2
            sf.write(str(d / "stems" / f"S{j:02d}.flac"), x.astype(np.float32), sr, subtype="PCM_16")
            meta[f"S{j:02d}"] = {
                "audio_rendered": True,
                "inst_class": cls,
                "is_drum": drum,
                "integrated_loudness": -20.0,
                "midi_program_name": cls,
                "midi_saved": True,
                "plugin_name": "bench.nkm",
                "program_num": prog,
            }
        (d / "metadata.yaml").write_text(yaml.safe_dump({"UUID": "0", "stems": meta}))
    for split in ("validation", "test"):
        (root / split).mkdir(parents=True, exist_ok=True)
    return root


def bench_loader(
    root: str | Path | None = None,
    names: tuple[str, ...] | None = None,
    samples: int = 40,
    repeats: int = 5,
    seconds: float = 10.0,
    batch_size: int = 8,
    n_tracks: int = 6,
    track_seconds: float = 60.0,
    cache_dir: str | Path | None = None,
    worker_allocator: bool = True,
) -> dict:
    """Samples/s of one worker per augment setting (``names``; default: every augmentation of the
    grid): {"pitch": {"median", "min", "max", "repeats"}, ...}.

    The loop runs in this process, set up as a DataLoader worker is: one intra-op thread and, unless
    ``worker_allocator`` is False, the workers' allocator setting (``keep_freed_memory``)."""
    torch.set_num_threads(1)  # a DataLoader worker runs single-threaded
    if worker_allocator:
        keep_freed_memory()
    with tempfile.TemporaryDirectory(prefix="transfersep-bench-") as tmp:
        tmp = Path(tmp)
        root = Path(root) if root else make_tree(tmp / "slakh", n_tracks, track_seconds)
        idx = slakh.index(root, ["bass", "drums", "piano_guitar"])
        cache = StemCache(cache_dir or tmp / "cache", [str(root)])
        tracks = idx.split("train")
        precache(tracks, cache)
        specs = settings()
        out = {}
        for name in specs if names is None else names:
            spec = specs[name]
            mode = "incoherent" if spec.incoherent else "coherent"
            ds = ExcerptSet(tracks, idx.source_names, cache, seconds, mode, 0, "train", 2**31 - 1, spec)
            out[name] = _rates(ds, samples, repeats, batch_size, seconds)
        return out


def _rates(ds, samples: int, repeats: int, batch_size: int, seconds: float) -> dict:
    """Samples/s of ``ds`` through a DataLoader in this process, ``repeats`` timed passes."""
    rates, cpu_rates = [], []
    for r in range(repeats + 1):  # the first pass warms the page cache, memory maps and compiled kernels
        sampler = range(r * samples, (r + 1) * samples)
        loader = DataLoader(ds, batch_size=batch_size, sampler=sampler, num_workers=0)
        t0, c0 = time.perf_counter(), time.process_time()
        for batch in loader:
            assert batch["sources"].shape[-1] == int(seconds * 16000)
        if r:
            rates.append(samples / (time.perf_counter() - t0))
            cpu_rates.append(samples / max(time.process_time() - c0, 1e-9))
    return {
        "median": round(statistics.median(rates), 2),
        "min": round(min(rates), 2),
        "max": round(max(rates), 2),
        "cpu_median": round(statistics.median(cpu_rates), 2),
        "repeats": repeats,
    }


def bench_bootstrap(
    samples: int = 40,
    repeats: int = 5,
    lengths: tuple[float, ...] = (10.0, 1.0),
    batch_size: int = 8,
    n_tracks: int = 6,
    track_seconds: float = 60.0,
    cache_dir: str | Path | None = None,
) -> dict:
    """The bootstrapped-DC pretraining loader of ONE worker (``objective=bootstrap``): coherent
    excerpts, no augmentation, each labelled by the primitives (``transfersep.data.bootstrap`` with
    its default settings) — samples/s per excerpt length, plus the labelling alone in ms per excerpt:
    {"10s": {"median", "min", "max", "cpu_median", "repeats", "label_ms"}, ...}."""
    from transfersep.data.bootstrap import BootstrapLabels, label_mixture

    torch.set_num_threads(1)
    keep_freed_memory()
    with tempfile.TemporaryDirectory(prefix="transfersep-bench-") as tmp:
        tmp = Path(tmp)
        root = make_tree(tmp / "slakh", n_tracks, track_seconds)
        idx = slakh.index(root, ["bass", "drums", "piano_guitar"])
        cache = StemCache(cache_dir or tmp / "cache", [str(root)])
        tracks = idx.split("train")
        precache(tracks, cache)
        out = {}
        for sec in lengths:
            plain = ExcerptSet(tracks, idx.source_names, cache, sec, "coherent", 0, "train", 2**31 - 1, AugmentSpec())
            res = _rates(BootstrapLabels(plain), samples, repeats, batch_size, sec)
            mixes = [plain[i]["mix"].numpy() for i in range(samples)]
            label_mixture(mixes[0])  # compiled kernels built before timing
            t0 = time.perf_counter()
            for m in mixes:
                label_mixture(m)
            res["label_ms"] = round(1000 * (time.perf_counter() - t0) / samples, 2)
            out[f"{sec:g}s"] = res
        return out


def bench_loader_workers(
    workers: int,
    setting: str = "pitch",
    samples: int = 192,
    seconds: float = 10.0,
    batch_size: int = 24,
    n_tracks: int = 6,
    track_seconds: float = 60.0,
) -> dict:
    """Samples/s of the training loader with ``workers`` worker processes (as ``data.num_workers``
    configures them: ``worker_init``, persistent) for one augment setting, after a warm-up pass:
    {"setting", "workers", "samples", "samples_per_s", "seconds"}."""
    from transfersep.data.base import worker_init

    with tempfile.TemporaryDirectory(prefix="transfersep-bench-") as tmp:
        tmp = Path(tmp)
        root = make_tree(tmp / "slakh", n_tracks, track_seconds)
        idx = slakh.index(root, ["bass", "drums", "piano_guitar"])
        cache = StemCache(tmp / "cache", [str(root)])
        tracks = idx.split("train")
        precache(tracks, cache)
        spec = settings()[setting]
        mode = "incoherent" if spec.incoherent else "coherent"
        ds = ExcerptSet(tracks, idx.source_names, cache, seconds, mode, 0, "train", 2**31 - 1, spec)
        loader = DataLoader(
            ds,
            batch_size=batch_size,
            sampler=range(2 * samples),
            num_workers=workers,
            worker_init_fn=worker_init if workers > 0 else None,
            persistent_workers=workers > 0,
        )
        it = iter(loader)
        for _ in range(max(1, workers)):  # warm-up: the workers start and fill their prefetch queues
            next(it)
        got, t0 = 0, time.perf_counter()
        for batch in it:
            got += len(batch["mix"])
            if got >= samples:
                break
        dt = time.perf_counter() - t0
        return {"setting": setting, "workers": workers, "samples": got, "samples_per_s": got / dt, "seconds": dt}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", help="an existing Slakh-layout tree (default: a generated one)")
    ap.add_argument("--settings", default=None, help="comma-separated augmentations (default: the grid's)")
    ap.add_argument("--samples", type=int, default=40, help="excerpts per repeat")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--tracks", type=int, default=6)
    ap.add_argument("--track-seconds", type=float, default=60.0)
    ap.add_argument(
        "--default-allocator",
        action="store_true",
        help="keep glibc's default allocator settings (to measure what the workers' setting saves)",
    )
    ap.add_argument(
        "--bootstrap",
        action="store_true",
        help="time the bootstrapped-DC pretraining loader (10-s and 1-s excerpts, labels included) instead",
    )
    ap.add_argument("--out", help="also write the JSON here")
    a = ap.parse_args(argv)
    if a.bootstrap:
        res = bench_bootstrap(a.samples, a.repeats, n_tracks=a.tracks, track_seconds=a.track_seconds)
        text = json.dumps({"unit": "samples/s per worker", **res}, indent=2)
        print(text)
        if a.out:
            from transfersep.files import atomic_write_text

            atomic_write_text(a.out, text + "\n")
        return
    res = bench_loader(
        a.root,
        tuple(a.settings.split(",")) if a.settings else None,
        a.samples,
        a.repeats,
        n_tracks=a.tracks,
        track_seconds=a.track_seconds,
        worker_allocator=not a.default_allocator,
    )
    text = json.dumps({"unit": "ten-second samples/s per worker", **res}, indent=2)
    print(text)
    if a.out:
        from transfersep.files import atomic_write_text

        atomic_write_text(a.out, text + "\n")


if __name__ == "__main__":
    main()
