"""The ``transfersep`` command: ``transfersep <subcommand> ...`` (``transfersep -h`` lists them).

A subcommand is two small functions, registered in ``COMMANDS``:
``add_<name>(parser)`` declares its arguments, ``cmd_<name>(args) -> int`` runs it and returns the
exit code. Heavy imports (torch, lightning) stay inside ``cmd_*`` so ``-h`` answers at once.
Errors the user can fix (a bad file, a wrong option) are raised as ``UserError``/``ValueError``/
``OSError`` or the tool's own load errors and printed as one line (exit code 2).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable


class UserError(Exception):
    """A problem with the command line or the files given; printed without a traceback."""


# -- separate ------------------------------------------------------------------------------------
def add_separate(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="audio files (WAV, FLAC, OGG, AIFF; any rate/channels)")
    p.add_argument("--model", "-m", required=True,
                   help="model package (.safetensors), Lightning checkpoint (.ckpt) or finished run directory")
    p.add_argument("--out", "-o", required=True, help="output folder; sources land in OUT/<input name>/<source>.<fmt>")
    p.add_argument("--device", default="auto", help="cpu | cuda | cuda:N | auto (default: cuda if available)")
    p.add_argument("--format", default="wav", choices=["wav", "flac"], help="wav (32-bit float, default) or flac (24-bit)")
    p.add_argument("--chunk-seconds", type=float, default=None, help="chunk length (default 4)")
    p.add_argument("--overlap-seconds", type=float, default=None, help="crossfade between chunks (default 0.5)")
    p.add_argument("--batch-size", type=int, default=None, help="chunks x channels per forward pass (default: 8 per CPU thread; 64 on GPU)")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "int8"],
                   help="auto: int8 dynamic quantization on CPU (2-3x faster, within -55 dB of fp32), fp32 on GPU")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU worker threads, each separating part of a batch (default: cores, at most 4)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar, no summary lines")


def cmd_separate(args: argparse.Namespace) -> int:
    from transfersep import audio
    from transfersep import separate as sep

    inputs = [Path(p) for p in args.inputs]
    stems: dict[str, Path] = {}
    for p in inputs:  # check every input before anything is written
        if not p.is_file():
            raise UserError(f"{p}: no such file")
        audio.info(p)
        if p.stem in stems:
            raise UserError(f"{stems[p.stem]} and {p} would both write {Path(args.out) / p.stem}; "
                            "rename one or separate them into different --out folders")
        stems[p.stem] = p
    model = sep.prepare_model(args.model, args.device, args.precision)
    kw = {"chunk_seconds": args.chunk_seconds, "overlap_seconds": args.overlap_seconds}
    kw = {k: v for k, v in kw.items() if v is not None}
    for p in inputs:
        paths = sep.separate_file(p, model, args.out, fmt=args.format, progress=not args.quiet,
                                  batch_size=args.batch_size, threads=args.threads, **kw)
        if not args.quiet:
            print(f"{p} -> {paths[0].parent}/ ({', '.join(q.name for q in paths)})")
    return 0


# -- export --------------------------------------------------------------------------------------
def add_export(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="RUN_DIR_OR_CKPT", help="a finished run directory or a .ckpt file")
    p.add_argument("--out", "-o", default=None, help="package path (default: <run dir>/model.safetensors)")


def cmd_export(args: argparse.Namespace) -> int:
    from transfersep.export import PACKAGE_NAME, export_model, load_model

    src = Path(args.source)
    out = Path(args.out) if args.out else (src if src.is_dir() else src.parent) / PACKAGE_NAME
    if out.resolve() == src.resolve():
        raise UserError(f"--out {out} is the source itself; choose another path")
    path = export_model(src, out)
    lm = load_model(path)  # read back: the package is complete and loads
    m = lm.meta["model"]
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB): sources {lm.source_names}, "
          f"BLSTM {m['num_layers']}x{m['hidden_size']}, D={m['embedding_dim']}, steps {lm.meta.get('steps')}")
    return 0


# -- registry ------------------------------------------------------------------------------------
Command = tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]
COMMANDS: dict[str, Command] = {
    "separate": ("split audio files into one file per source", add_separate, cmd_separate),
    "export": ("package a trained run as one self-describing .safetensors model", add_export, cmd_export),
}


def _lazy(module: str, fn: str) -> Callable:
    def call(arg):
        import importlib

        return getattr(importlib.import_module(module), fn)(arg)

    return call


COMMANDS["status"] = ("list a study's grid points as finished/running/failed/stale/interrupted/missing",
                      _lazy("transfersep.status", "configure_parser"), _lazy("transfersep.status", "run_from_args"))
COMMANDS["study"] = ("run the study: pretraining grid, fine-tuning grid, baselines",
                     _lazy("transfersep.study", "configure_parser"), _lazy("transfersep.study", "run_from_args"))


def build_parser() -> argparse.ArgumentParser:
    from transfersep import __version__

    parser = argparse.ArgumentParser(prog="transfersep", description="Transfer learning for music source separation.")
    parser.add_argument("--version", action="version", version=f"transfersep {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_, add, run) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        add(p)
        p.set_defaults(func=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"transfersep {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        from transfersep.audio import AudioReadError
        from transfersep.export import ModelLoadError

        if isinstance(e, (UserError, ValueError, OSError, AudioReadError, ModelLoadError)):
            print(f"transfersep {args.command}: error: {e}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    raise SystemExit(main())
