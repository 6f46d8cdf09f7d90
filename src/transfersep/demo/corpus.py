"""Generate the demo corpus: real scores rendered into miniature copies of the datasets' layouts.

    python -m transfersep.demo.corpus OUT_DIR [--size demo|test|large] [--seed 0]
                                      [--only slakh,musdb,bach10,dagstuhl,remixpacks,librimix]

Writes, under OUT_DIR, ``slakh2100_flac_redux/``, ``musdb18hq/``, ``Bach10/``,
``DagstuhlChoirSet_V1.2.3/``, ``remixpacks/`` (music rendered with FluidSynth) and ``LibriMix/``
(speech read by espeak-ng; see each module's docstring for the layout it copies). Deterministic for
a seed (given the same FluidSynth, SoundFont and espeak-ng).

Caching: ``OUT_DIR/.transfersep-demo.json`` records, per dataset, the size, seed, generator
version and SoundFont of the completed build plus each item's provenance (music21 work, bars,
tempo). A call whose datasets are all recorded with the same arguments returns at once. Datasets
are built in ``OUT_DIR/.building-*`` and renamed into place; the record is written last
(atomically), so a killed build leaves nothing that a later call trusts: it is rebuilt cleanly.
"""

from __future__ import annotations

import argparse
import fcntl
import importlib
import json
import multiprocessing
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from transfersep.demo import VERSION
from transfersep.demo.render import (
    Renderer,
    RenderToolMissing,
    find_fluidsynth,
    find_soundfont,
    fluidsynth_version,
    require_pretty_midi,
)
from transfersep.files import atomic_write_json

DATASETS = ("slakh", "musdb", "bach10", "dagstuhl", "remixpacks", "librimix")
SIZES = ("demo", "test", "large")  # large: Slakh only (the shipped CPU model's corpus)
MARKER, LOCK = ".transfersep-demo.json", ".transfersep-demo.lock"


class CorpusError(RuntimeError):
    """The output folder cannot be used as asked."""


def _module(name: str):
    return importlib.import_module(f"transfersep.demo.{name}")


def _run_job(name: str, job: dict, root: str, renderer: Renderer) -> tuple[dict, float]:
    t0 = time.time()
    return _module(name).build(job, Path(root), renderer), time.time() - t0


def read_marker(out_dir: Path) -> dict:
    path = out_dir / MARKER
    if not path.is_file():
        return {"datasets": {}}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise CorpusError(f"{path} is not valid JSON ({e}); delete it and the dataset folders beside it") from e
    return data if isinstance(data.get("datasets"), dict) else {"datasets": {}}


def _key(size: str, seed: int, soundfont: str) -> dict:
    return {"size": size, "seed": seed, "version": VERSION, "soundfont": soundfont}


def build_corpus(
    out_dir: str | Path, size: str = "demo", seed: int = 0, only: list[str] | None = None, workers: int = 2, log=print
) -> dict:
    """Build (or find cached) the requested datasets under ``out_dir``; returns the marker dict.

    Each dataset entry: {"root": folder name, "state": "complete", "size", "seed", "version",
    "soundfont", "worker_seconds": time spent in planning and jobs, "audio_seconds": length of
    all items, "items": [provenance per track/take/song: path, music21 work, bars, bpm, ...]}.
    Raises RenderToolMissing (FluidSynth / pretty_midi absent: the message names the install
    command), CorpusError (OUT_DIR holds a folder this generator did not make) or ValueError."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, not {size!r}")
    names = list(only or DATASETS)
    unknown = [n for n in names if n not in DATASETS]
    if unknown:
        raise ValueError(f"unknown dataset(s) {unknown}; choose from {','.join(DATASETS)}")
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    soundfont = find_soundfont()
    key = _key(size, seed, soundfont.name)
    with open(out / LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder per OUT_DIR; a second call waits, then hits the cache
        marker = read_marker(out)
        entries = marker["datasets"]
        todo = [
            n
            for n in names
            if not (
                entries.get(n, {}).get("state") == "complete"
                and all(entries[n].get(k) == v for k, v in key.items())
                and (out / _module(n).ROOT).is_dir()
            )
        ]
        for n in todo:
            root = out / _module(n).ROOT
            if root.exists() and n not in entries:
                raise CorpusError(
                    f"{root} exists but was not made by this generator; choose another OUT_DIR or remove that folder"
                )
        if not todo:
            log(f"demo corpus up to date in {out} ({size}, seed {seed}): {', '.join(names)}")
            return marker
        fluidsynth = find_fluidsynth()
        require_pretty_midi()
        for stale in out.glob(".building-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=out))
        scratch = tmp / "scratch"
        scratch.mkdir()
        renderer = Renderer(fluidsynth, str(soundfont), str(scratch))
        try:
            built = _render(todo, size, seed, tmp, renderer, workers, log)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)  # nothing half-built is kept
            raise
        built = {n: {**entry, **key} for n, entry in built.items()}
        # Swap in: first mark the old folders as being replaced, then rename, then record (last).
        for n in todo:
            if n in entries:
                entries[n] = {"root": entries[n].get("root", _module(n).ROOT), "state": "replacing"}
        marker["fluidsynth"] = fluidsynth_version(fluidsynth)
        atomic_write_json(out / MARKER, marker)
        for n in todo:
            dest = out / _module(n).ROOT
            if dest.exists():
                shutil.rmtree(dest)
            (tmp / _module(n).ROOT).replace(dest)
        entries.update(built)
        atomic_write_json(out / MARKER, marker)
        shutil.rmtree(tmp, ignore_errors=True)
    return marker


def _render(todo: list[str], size: str, seed: int, tmp: Path, renderer: Renderer, workers: int, log) -> dict:
    """Plan every dataset (parsing scores in the pool), then run all their jobs in the pool;
    each dataset lands in ``tmp/<ROOT>``. Returns the marker entries (without the cache key)."""
    built = {}
    ctx = multiprocessing.get_context("spawn")  # no fork of a parent that may hold threads
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        from transfersep.demo.library import Library

        lib = Library(pool, seed)
        planned = {}
        for n in todo:
            mod, t0 = _module(n), time.time()
            if size not in mod.PRESETS:
                has = ", ".join(d for d in DATASETS if size in _module(d).PRESETS)
                raise CorpusError(f"size {size!r} exists only for {has}: add --only {has.replace(', ', ',')}")
            planned[n] = (mod.plan(mod.PRESETS[size], seed, lib), time.time() - t0)
        futures = {
            n: [pool.submit(_run_job, n, job, str(tmp / _module(n).ROOT), renderer) for job in jobs]
            for n, (jobs, _) in planned.items()
        }
        for n in todo:
            mod = _module(n)
            try:
                done = [f.result() for f in futures[n]]
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
            items = [item for item, _ in done]
            if hasattr(mod, "finish"):
                mod.finish(tmp / mod.ROOT, mod.PRESETS[size], seed)
            busy = planned[n][1] + sum(t for _, t in done)
            built[n] = {
                "root": mod.ROOT,
                "state": "complete",
                "worker_seconds": round(busy, 1),
                "audio_seconds": round(sum(i["seconds"] for i in items), 1),
                "items": items,
            }
            log(
                f"  {mod.ROOT}: {len(items)} items, {built[n]['audio_seconds']:.0f} s of audio, "
                f"{busy:.1f} s of worker time"
            )
    return built


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m transfersep.demo.corpus", description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir", help="folder that receives the dataset folders")
    ap.add_argument(
        "--size",
        choices=SIZES,
        default="demo",
        help="demo: the full demo; test: tiny, for tests; large: Slakh only, the shipped CPU model's corpus",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", default=",".join(DATASETS), help=f"comma-separated subset of {','.join(DATASETS)}")
    ap.add_argument("--workers", type=int, default=2, help="rendering processes (default 2)")
    args = ap.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    t0 = time.time()
    try:
        build_corpus(args.out_dir, args.size, args.seed, only, args.workers)
    except (RenderToolMissing, CorpusError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"demo corpus ready in {Path(args.out_dir).resolve()} ({time.time() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
