"""The ``transfersep`` command: ``transfersep <verb> ...`` for every job (``transfersep -h`` lists them).

``VERBS`` is the one table of verbs: a one-line summary, one example, and the function that does the
job, named ``"module:function"`` and imported on first use (so ``-h`` answers at once, without torch
or Lightning). Every such function lives with its role (separation in ``inference``, packages in
``model``, the study in ``study``, ...) and has one signature, ``fn(argv, parser) -> exit code``:
``parser`` is the verb's own, named ``transfersep <verb>``, described by the summary and ending with
the example; the function adds its options and parses ``argv`` itself (``train`` hands it to Hydra).
Adding a verb is adding an entry.

A malformed ``sweeps/grid.yaml`` is one line (exit 2) for every verb; so is bad input (``ValueError``,
``OSError``, an unreadable audio file or model) for verbs with ``one_line_errors``: the others sort
their errors themselves and keep the traceback of a bug. Ctrl-C is one line (exit 130).
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["VERBS", "build_parser", "main", "verb_parser"]


@dataclass(frozen=True)
class Verb:
    summary: str
    example: str | Callable[[], str]  # a callable builds it on use (from the study's grid)
    run: str  # "module:function" with function(argv, parser) -> exit code
    one_line_errors: bool = False  # ValueError/OSError/... are the user's: one line, exit 2; warnings one line


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
        "transfersep.cli.train:train",
    ),
    "study": Verb(
        "run the study: every stage of sweeps/grid.yaml in order (pretraining grid, zero-shot probes, ...)",
        "transfersep study --launcher slurm downstream=bach10",
        "transfersep.study.launch:main",
    ),
    "status": Verb(
        "list a study's grid points as finished/running/failed/stale/interrupted/missing",
        "transfersep status runs/paper --only failed,stale",
        "transfersep.study.status:main",
    ),
    "probe": Verb(
        "what a pretrained model separates untrained: its DC clusters, or a MixIT model's outputs (zero-shot)",
        "transfersep probe -m pretrain=slakh downstream=bach10,dagstuhl",
        "transfersep.cli.train:probe",
    ),
    "report": Verb(
        "the paper's figures, Table 2 and Wilcoxon tests from a study's finished runs",
        "transfersep report runs/paper --out runs/paper/report",
        "transfersep.report.build:main",
    ),
    "data": Verb(
        "check a dataset root: print the index the loader builds (tracks, sources, files, split)",
        "transfersep data slakh /data/slakh2100_flac_redux --summary",
        "transfersep.data.__main__:main",
    ),
    "separate": Verb(
        "split audio files into one file per source",
        "transfersep separate song.mp3 --model runs/paper/finetune/slakh-none-whole-bach10",
        "transfersep.inference.command:separate",
        one_line_errors=True,
    ),
    "models": Verb(
        "the pretrained models shipped with the package (init_from=<name>, separate --model <name>)",
        "transfersep train experiment=cpu init_from=slakh-cpu downstream=stems paths.stems=~/stems ...",
        "transfersep.model.commands:models",
        one_line_errors=True,
    ),
    "export": Verb(
        "package a trained run as one self-describing .safetensors model",
        "transfersep export runs/paper/baseline/bach10 --out bach10.safetensors",
        "transfersep.model.commands:export",
        one_line_errors=True,
    ),
}


def _example(name: str) -> str:
    ex = VERBS[name].example
    return ex if isinstance(ex, str) else ex()


def verb_parser(name: str) -> argparse.ArgumentParser:
    """The parser a verb's function receives: its name, its summary, its example."""
    return argparse.ArgumentParser(
        prog=f"transfersep {name}",
        description=VERBS[name].summary,
        epilog=f"example:\n  {_example(name)}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser: ``transfersep -h`` lists the verbs (each verb parses its own options)."""
    from transfersep import __version__

    parser = argparse.ArgumentParser(
        prog="transfersep",
        description="Transfer learning for music source separation.",
        epilog="`transfersep <verb> -h` explains a verb. Start with: make demo; transfersep status runs/demo",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"transfersep {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="VERB")
    for name, v in VERBS.items():
        sub.add_parser(name, help=v.summary, add_help=False)
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
    if argv and argv[0] in VERBS:
        return run_verb(argv[0], argv[1:])
    if argv and not argv[0].startswith("-"):
        print(unknown_verb(argv[0]), file=sys.stderr)
        return 2
    build_parser().parse_args(argv)  # -h, --version, or no verb: argparse answers and exits
    return 2


def run_verb(name: str, argv: list[str]) -> int:
    """Run verb ``name`` on ``argv``: the one way every verb is called."""
    from transfersep.study.grid import GridError

    verb = VERBS[name]
    module, function = verb.run.split(":")
    fn = getattr(importlib.import_module(module), function)
    try:
        with warnings.catch_warnings():
            if verb.one_line_errors:  # its warnings are the user's too: one line, no "file:line:" and source line
                warnings.showwarning = lambda message, *_, **__: print(
                    f"transfersep {name}: warning: {message}", file=sys.stderr
                )
            return int(fn(argv, verb_parser(name)) or 0)
    except SystemExit as e:  # argparse's -h and its usage errors end here, like any verb's own exit
        if e.code is None or isinstance(e.code, int):
            return e.code or 0
        print(e.code, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"transfersep {name}: interrupted", file=sys.stderr)
        return 130
    except GridError as err:  # sweeps/grid.yaml is malformed: the one line that says where
        print(f"transfersep {name}: error: {err}", file=sys.stderr)
        return 2
    except Exception as e:
        from transfersep.audio import AudioReadError
        from transfersep.model.package import ModelLoadError

        if verb.one_line_errors and isinstance(e, (ValueError, OSError, AudioReadError, ModelLoadError)):
            print(f"transfersep {name}: error: {e}", file=sys.stderr)
            return 2
        raise
