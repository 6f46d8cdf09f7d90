"""``transfersep separate``: its options and the loop over the inputs (``inference.separate`` does
the work of each file). Bad input raises ``ValueError``, which the command prints as one line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="audio files: WAV, FLAC, OGG, MP3, AIFF (anything libsndfile reads); any rate and channels",
    )
    p.add_argument(
        "--model",
        "-m",
        required=True,
        help="model package (.safetensors), finished run directory, Lightning checkpoint (.ckpt), or the name "
        "of a shipped model (`transfersep models` lists them)",
    )
    p.add_argument(
        "--out",
        "-o",
        default="separated",
        help="output root (default: separated); sources land in OUT/<model name>/<track>/<source>.<fmt>",
    )
    p.add_argument("--stems", default=None, help="comma-separated sources to write (default: all), e.g. vocals,bass")
    p.add_argument(
        "--clusters",
        type=int,
        default=None,
        metavar="K",
        help="write K unlabelled clusters of the model's deep-clustering embeddings (cluster_1 ... "
        "cluster_K) instead of its sources: k-means fitted on the whole recording; works with a "
        "pretrained model, which has no trained mask head",
    )
    p.add_argument(
        "--residual",
        action="store_true",
        help="write what no source took as residual.<fmt> (the sources plus it add up to the input) instead "
        "of sharing it among the sources (the default: they add up to the input)",
    )
    p.add_argument("--device", default="auto", help="cpu | cuda | cuda:N | auto (default: cuda if available)")
    p.add_argument(
        "--format", default="wav", choices=["wav", "flac"], help="wav (32-bit float, default) or flac (24-bit)"
    )
    p.add_argument("--chunk-seconds", type=float, default=None, help="chunk length (default 4)")
    p.add_argument("--overlap-seconds", type=float, default=None, help="crossfade between chunks (default 0.5)")
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="chunks x channels per forward pass (default: 8 per CPU thread; 64 on GPU)",
    )
    p.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "fp32", "int8"],
        help="auto: int8 dynamic quantization on CPU (2-3x faster) when it agrees with fp32 to at "
        "least 40 dB on a probe signal, else fp32; fp32 on GPU",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU worker threads, each separating part of a batch (default: cores, at most 4)",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar, no summary lines")


def separate(argv: list[str], parser: argparse.ArgumentParser) -> int:
    """``transfersep separate``: split each input into one file per source (exit 2 when any was too short)."""
    _options(parser)
    return _separate(parser.parse_args(argv))


def _separate(args: argparse.Namespace) -> int:
    from transfersep.inference import separate as sep
    from transfersep.inference.api import claim_folder, model_name
    from transfersep.inference.inputs import check_input, pick_sources
    from transfersep.model.shipped import resolve

    args.model = resolve(args.model)  # a shipped model's name stands for its file
    inputs = [Path(p) for p in args.inputs]
    root = Path(args.out)
    if root.exists() and not root.is_dir():
        raise ValueError(f"--out {root} is a file; give a folder (sources land in {root}/<model name>/<track>/)")
    out = root / model_name(args.model)
    stems: dict[str, Path] = {}
    for p in inputs:  # check every input before anything is written
        check_input(p)
        if p.stem in stems:
            raise ValueError(
                f"{stems[p.stem]} and {p} would both write {out / p.stem}; "
                "rename one or separate them into different --out folders"
            )
        stems[p.stem] = p
    claim_folder(out, args.model, write=False)  # another model's outputs there: refused before any work
    if args.clusters is not None and args.clusters < 2:
        raise ValueError(f"--clusters {args.clusters}: give 2 or more (one cluster per sound to pull apart)")
    # --clusters uses the deep-clustering head only: a pretraining model (no trained mask head) serves
    model = sep.prepare_model(args.model, args.device, args.precision, clusters=args.clusters is not None)
    wanted = [s.strip() for s in args.stems.split(",") if s.strip()] if args.stems else None
    names = [f"cluster_{i + 1}" for i in range(args.clusters)] if args.clusters else model.source_names
    pick_sources(names, wanted)  # an unknown name stops before any work
    from transfersep.model import objectives

    own_outputs = model.meta.get("phase") == "pretrain" and objectives.get(model.objective).trains == "mask"
    if own_outputs and not args.clusters and not args.quiet:
        print(
            f"note: a {model.objective} pretraining model: its {len(names)} outputs ({', '.join(names)}) carry "
            "no names; which sound lands in which output is the model's own grouping",
            file=sys.stderr,
        )
    kw = {"chunk_seconds": args.chunk_seconds, "overlap_seconds": args.overlap_seconds}
    kw = {k: v for k, v in kw.items() if v is not None}
    skipped = 0
    for p in inputs:
        try:
            paths = sep.separate_file(
                p,
                model,
                out,
                fmt=args.format,
                progress=not args.quiet,
                batch_size=args.batch_size,
                threads=args.threads,
                sources=wanted,
                clusters=args.clusters,
                residual=args.residual,
                **kw,
            )
        except sep.TooShortError as e:  # one line, and the rest of the batch still runs
            print(f"transfersep separate: skipped: {e}", file=sys.stderr)
            skipped += 1
            continue
        claim_folder(out, args.model)
        if not args.quiet:
            print(f"{p} -> {paths[0].parent}/ ({', '.join(q.name for q in paths)})")
    return 2 if skipped else 0
