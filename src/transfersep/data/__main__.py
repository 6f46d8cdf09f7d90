"""Print a dataset's index as JSON: ``transfersep data NAME ROOT [ROOT2] [options]``.

Run it before a long job to check a path: it lists the tracks, their sources -> files, split,
duration, and the stems it ignored; ``--summary`` prints the per-split counts and the index's notes
(songs left out, stems padded). It exits with status 2 and a one-line reason when the root is not
that dataset (missing or empty folder, a mistyped path, another dataset's layout, malformed
metadata, an unreadable file, a declared class that matches no file of a song). ``both`` takes two
roots: MUSDB, then Slakh; ``librimix_slakh`` LibriMix, then Slakh. The speech corpora (``librimix``,
``wsj0mix``) serve their speakers s1..s<n_src> (``--option n_src=3``; ``--sources s1,s2,noise`` for
LibriMix's noise). ``mixtures`` indexes any folder of audio files (one source, ``mix``);
``--option unlabeled=true`` reads any dataset as its tracks' mixtures only; ``--option fold=K``
shows a downstream set's fold K (its first note names the fold, the number of folds and the test
pieces; a fold out of range exits 2 saying how many there are).

Examples::

    transfersep data dagstuhl /data/DagstuhlChoirSet_V1.2.3
    transfersep data slakh /data/slakh2100_flac_redux --split test --summary
    transfersep data bach10 /data/Bach10 --option fold=3 --split test
    transfersep data mixtures /data/fma_small --summary
    transfersep data librimix /data/LibriMix --option rate=8k --option mode=max --summary
    transfersep data wsj0mix /data/wsj0-mix --option n_src=3 --summary
    transfersep data stems /my/stems --sources lead,rhythm \\
        --option 'patterns={lead: ["*vox*", "*lead*"], rhythm: ["*gtr*"]}'
    transfersep data musdb /data/musdb18hq --cache-dir /scratch/cache --prepare
"""

from __future__ import annotations

import argparse
import json
import sys

import yaml

from transfersep.audio import AudioReadError
from transfersep.data.index import DatasetError, DatasetIndex
from transfersep.data.loaders import names
from transfersep.data.registry import build_index


def _parse_option(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--option wants KEY=VALUE, got {text!r}")
    k, v = text.split("=", 1)
    return k.strip(), yaml.safe_load(v)


def main(argv: list[str] | None = None, parser: argparse.ArgumentParser | None = None) -> int:
    """The command line; ``parser``: the one ``transfersep data`` names (default: a plain one)."""
    raw = argparse.RawDescriptionHelpFormatter
    ap = parser or argparse.ArgumentParser(prog="transfersep data", formatter_class=raw)
    ap.description = __doc__.split("\n\n")[0]
    ap.add_argument("name", help=f"the dataset: {', '.join(names())}, or one its own module declares")
    ap.add_argument("roots", nargs="+", metavar="ROOT")
    ap.add_argument("--split", choices=("train", "val", "test"), help="print only the tracks of this split")
    ap.add_argument("--sources", help="comma-separated source names (default: the paper's for NAME)")
    ap.add_argument(
        "--option",
        action="append",
        type=_parse_option,
        default=[],
        help="loader option KEY=VALUE (YAML value), e.g. layout=original, test_pieces=[5], stem_lengths=pad, "
        "missing_sources=skip, unlabeled=true, fold=3",
    )
    ap.add_argument("--summary", action="store_true", help="print only the per-split summary and the notes")
    ap.add_argument("--cache-dir", help="with --prepare: where the 16 kHz copies go (outside the dataset)")
    ap.add_argument("--prepare", action="store_true", help="fill the 16 kHz cache for every track now")
    args = ap.parse_args(argv)
    try:
        idx = build_index(args.name, args.roots, args.sources.split(",") if args.sources else None, **dict(args.option))
        if args.prepare:
            if not args.cache_dir:
                ap.error("--prepare needs --cache-dir")
            from transfersep.data.cache import StemCache
            from transfersep.data.registry import precache

            cache = StemCache(args.cache_dir, args.roots)
            for k, t in enumerate(idx.tracks):
                precache([t], cache)
                print(f"[{k + 1}/{len(idx.tracks)}] cached {t.name}", file=sys.stderr)
    except (DatasetError, AudioReadError, RuntimeError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.split:
        idx = DatasetIndex(idx.dataset, idx.root, idx.source_names, idx.split(args.split), idx.layout, idx.notes)
    print(json.dumps({**idx.summary(), "notes": idx.notes}, indent=2) if args.summary else idx.to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
