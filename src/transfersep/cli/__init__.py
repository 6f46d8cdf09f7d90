"""The ``transfersep`` command: ``transfersep <verb> ...`` for every job (``transfersep -h`` lists them).

A verb is one entry of ``VERBS``: a one-line summary, one example, and either
``add(parser)`` + ``run(args) -> exit code`` (argparse verbs) or ``passthrough(argv) -> exit code``
for verbs that parse their own command line (``train`` is Hydra's). Adding a verb is adding an
entry. Heavy imports (torch, lightning) stay inside the functions so ``-h`` answers at once.
Errors the user can fix (a bad file, a wrong option) are raised as ``UserError``/``ValueError``/
``OSError`` or the tool's own load errors and printed as one line (exit code 2).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from transfersep.cli.errors import UserError
from transfersep.cli.models import add_models, cmd_models
from transfersep.cli.separate import add_separate, cmd_separate
from transfersep.files import PACKAGE

__all__ = ["VERBS", "UserError", "build_parser", "main"]


# -- export --------------------------------------------------------------------------------------
def add_export(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="RUN_DIR_OR_CKPT", help="a finished run directory or a .ckpt file")
    p.add_argument("--out", "-o", default=None, help=f"package path (default: <run dir>/{PACKAGE})")


def cmd_export(args: argparse.Namespace) -> int:
    from transfersep.model.package import export_model, load_model

    src = Path(args.source)
    out = Path(args.out) if args.out else (src if src.is_dir() else src.parent) / PACKAGE
    if out.resolve() == src.resolve():
        raise UserError(f"--out {out} is the source itself; choose another path")
    path = export_model(src, out)
    lm = load_model(path)  # read back: the package is complete and loads
    m = lm.meta["model"]
    print(
        f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB): sources {lm.source_names}, "
        f"BLSTM {m['num_layers']}x{m['hidden_size']}, D={m['embedding_dim']}, steps {lm.meta.get('steps')}"
    )
    return 0


# -- verbs that parse their own command line -------------------------------------------------------
def _train(argv: list[str]) -> int:
    if argv and argv[0] in ("-h", "--help") and len(argv) == 1:
        from transfersep.run.plan import GRID_KEYS

        print(
            _verb_help("train") + "\n\nEvery option of `python train.py` works here unchanged: Hydra overrides "
            f"(key=value; config groups {', '.join(GRID_KEYS)}, model, trainer, experiment in conf/; the "
            "study's values are in sweeps/grid.yaml), -m for a grid, --cfg job to print the resolved config, "
            "dry_run=true to check data roots and checkpoints, --verbose for tracebacks of user errors."
        )
        return 0
    from transfersep.cli.train import main as train_main

    sys.argv = ["transfersep train", *argv]  # Hydra reads its command line from sys.argv
    try:
        train_main()
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return 0


def _probe(argv: list[str]) -> int:
    if argv and argv[0] in ("-h", "--help") and len(argv) == 1:
        print(
            _verb_help("probe") + "\n\nThe zero-shot probe: k-means on a pretrained model's deep-clustering "
            "embeddings of each test mixture of the downstream set, one cluster per source, binary masks, "
            "SI-SDR on the fine-tunes' test excerpts with the best cluster-to-source assignment; nothing "
            "trains. The same as `transfersep train finetune=zeroshot ...` (every train option works). To "
            "hear the clusters of any recording: transfersep separate song.wav --model M --clusters K."
        )
        return 0
    return _train([*argv, "finetune=zeroshot"])


def _report(argv: list[str]) -> int:
    from transfersep.report.build import main as report_main

    return _with_example("report", report_main, argv)


def _data(argv: list[str]) -> int:
    from transfersep.data.__main__ import main as data_main

    return _with_example("data", data_main, argv)


def _with_example(name: str, fn: Callable[[list[str]], int], argv: list[str]) -> int:
    """Run a module's own command line; its ``-h`` is followed by this verb's example."""
    from transfersep.study.grid import GridError

    try:
        return int(fn(argv) or 0)
    except GridError as err:  # sweeps/grid.yaml is malformed: the one line that says where
        print(f"transfersep {name}: error: {err}", file=sys.stderr)
        return 2
    except SystemExit as e:
        if argv and any(a in ("-h", "--help") for a in argv) and not e.code:
            print(f"\nexample:\n  {_example(name)}")
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)


def _own_parser(name: str, module: str) -> Callable[[list[str]], int]:
    """A verb whose module defines ``configure_parser`` and ``run_from_args``, parsed here with
    options and Hydra-style overrides in any order (``parse_intermixed_args``, which argparse's
    subcommands cannot do). Imported on first use, so ``transfersep -h`` stays fast."""

    def call(argv: list[str]) -> int:
        import importlib

        from transfersep.study.grid import GridError

        mod = importlib.import_module(module)
        parser = argparse.ArgumentParser(
            prog=f"transfersep {name}",
            description=mod.__doc__,
            epilog=f"example:\n  {_example(name)}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        try:
            return int(mod.run_from_args(mod.configure_parser(parser).parse_intermixed_args(argv)) or 0)
        except GridError as err:  # sweeps/grid.yaml is malformed: the one line that says where
            print(f"transfersep {name}: error: {err}", file=sys.stderr)
            return 2

    return call


# -- the verb table ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Verb:
    summary: str
    example: str | Callable[[], str]  # a callable builds it on use (from the study's grid)
    add: Callable[[argparse.ArgumentParser], None] | None = None
    run: Callable[[argparse.Namespace], int] | None = None
    passthrough: Callable[[list[str]], int] | None = None  # parses its own argv (train: Hydra)


def _first_stage_example() -> str:
    """``transfersep train -m`` over the first stage of the study's grid (the paper's pretraining:
    ``pretrain=musdb,slakh,both augment=none,pitch,stretch,incoherent``)."""
    from transfersep.study.grid import GridError, load_grid

    try:
        grid = load_grid()
    except GridError:  # the help still answers; the commands that read the grid say what is wrong
        return "transfersep train -m +sweeps=pretrain"
    first = next(iter(grid.stages.values()))
    return "transfersep train -m " + " ".join(f"{k}={','.join(grid.axes[k])}" for k in first.sweeps)


VERBS: dict[str, Verb] = {
    "train": Verb(
        "one run of the study, or a grid with -m (Hydra; the same as python train.py)",
        _first_stage_example,
        passthrough=_train,
    ),
    "study": Verb(
        "run the study: every stage of sweeps/grid.yaml in order (pretraining grid, zero-shot probes, ...)",
        "transfersep study --launcher slurm downstream=bach10",
        passthrough=_own_parser("study", "transfersep.study.launch"),
    ),
    "status": Verb(
        "list a study's grid points as finished/running/failed/stale/interrupted/missing",
        "transfersep status runs/paper --only failed,stale",
        passthrough=_own_parser("status", "transfersep.study.status"),
    ),
    "probe": Verb(
        "what a pretrained model separates untrained: its DC clusters, or a MixIT model's outputs (zero-shot)",
        "transfersep probe -m pretrain=slakh downstream=bach10,dagstuhl",
        passthrough=_probe,
    ),
    "report": Verb(
        "the paper's figures, Table 2 and Wilcoxon tests from a study's finished runs",
        "transfersep report runs/paper --out runs/paper/report",
        passthrough=_report,
    ),
    "data": Verb(
        "check a dataset root: print the index the loader builds (tracks, sources, files, split)",
        "transfersep data slakh /data/slakh2100_flac_redux --summary",
        passthrough=_data,
    ),
    "separate": Verb(
        "split audio files into one file per source",
        "transfersep separate song.mp3 --model runs/paper/finetune/slakh-none-whole-bach10",
        add_separate,
        cmd_separate,
    ),
    "models": Verb(
        "the pretrained models shipped with the package (init_from=<name>, separate --model <name>)",
        "transfersep train experiment=cpu init_from=slakh-cpu downstream=stems paths.stems=~/stems ...",
        add_models,
        cmd_models,
    ),
    "export": Verb(
        "package a trained run as one self-describing .safetensors model",
        "transfersep export runs/paper/baseline/bach10 --out bach10.safetensors",
        add_export,
        cmd_export,
    ),
}


def _example(name: str) -> str:
    ex = VERBS[name].example
    return ex if isinstance(ex, str) else ex()


def _verb_help(name: str) -> str:
    v = VERBS[name]
    return f"usage: transfersep {name} ...\n\n{v.summary}\n\nexample:\n  {_example(name)}"


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser; ``parser.verb_parsers`` holds each verb's own (for its usage)."""
    from transfersep import __version__

    parser = argparse.ArgumentParser(
        prog="transfersep",
        description="Transfer learning for music source separation.",
        epilog="`transfersep <verb> -h` explains a verb. Start with: make demo; transfersep status runs/demo",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"transfersep {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="VERB")
    verb_parsers: dict[str, argparse.ArgumentParser] = {}
    for name, v in VERBS.items():
        p = sub.add_parser(
            name,
            help=v.summary,
            description=v.summary,
            epilog=f"example:\n  {_example(name)}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
            add_help=v.passthrough is None,
        )
        if v.add is not None:
            v.add(p)
        p.set_defaults(func=v.run)
        verb_parsers[name] = p
    parser.verb_parsers = verb_parsers
    return parser


def unknown_verb(word: str) -> str:
    """One line for a word that is no verb: the closest verb when there is one (a typo)."""
    import difflib

    close = difflib.get_close_matches(word, list(VERBS), n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'?" if close else f"the verbs are {', '.join(VERBS)}"
    return f"transfersep: error: unknown verb '{word}'; {hint} (`transfersep -h` explains them)"


def main(argv: list[str] | None = None) -> int:
    """``transfersep <verb> ...``; returns the exit code. A reader that closes the pipe early
    (``transfersep status runs/x | head``) ends the command quietly with 141 (128 + SIGPIPE, what a
    shell shows for ``cat`` in the same place), never with a traceback."""
    try:
        code = _main(argv)
        sys.stdout.flush()  # output still buffered meets the closed pipe here, not at exit
        return code
    except BrokenPipeError:
        # stdout is gone: point it at /dev/null so that the interpreter's last flush stays quiet
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + signal.SIGPIPE


def _main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in VERBS and VERBS[argv[0]].passthrough is not None:
        return VERBS[argv[0]].passthrough(argv[1:])
    if argv and not argv[0].startswith("-") and argv[0] not in VERBS:
        print(unknown_verb(argv[0]), file=sys.stderr)
        return 2
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # an option the verb does not know: the verb's usage, not the top-level one
        parser.verb_parsers[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"transfersep {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        from transfersep.audio import AudioReadError
        from transfersep.model.package import ModelLoadError

        if isinstance(e, (UserError, ValueError, OSError, AudioReadError, ModelLoadError)):
            print(f"transfersep {args.command}: error: {e}", file=sys.stderr)
            return 2
        raise
