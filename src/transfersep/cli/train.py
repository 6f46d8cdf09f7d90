"""The training command: ``python train.py <grid point overrides>``, ``transfersep train`` (Hydra).

Hydra's command line plus one-line errors: a user error (missing data, a bad value, a missing
parent) prints one line and exits 2; in a multirun it marks its job failed and the grid runs on.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from transfersep.run import console, errors, failures
from transfersep.run.config import conf_dir, in_multirun, register_resolvers
from transfersep.run.configline import config_error_line, is_config_error
from transfersep.run.errors import CompactJobFailed, JobFailed
from transfersep.run.lifecycle import run
from transfersep.study.grid import register_resolver

log = logging.getLogger("transfersep")
register_resolvers()
register_resolver()  # ${grid_sweep:<stage>} of sweeps/<stage>.yaml
# the jobs of this process's multirun that failed on user errors (Hydra calls hydra_main once per job)
FAILED = failures.FailedJobs()


@hydra.main(config_path=str(conf_dir()), config_name="train", version_base="1.3")
def hydra_main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    from transfersep.run.resume import Interrupted, Preempted

    console.adopt_library_logging()
    run_dir, runs_root = Path(HydraConfig.get().runtime.output_dir), Path(cfg.paths.runs_dir)
    if in_multirun() and (why := _excluded(cfg)):  # a point of the sweep's product that the grid leaves out
        log.info("skipped: %s; nothing to train", why)
        failures.remove_unused_run_dir(run_dir, runs_root)
        return
    try:
        _run(cfg)
        if cfg.dry_run is True:  # a dry run writes nothing (its report went to stdout)
            failures.remove_unused_run_dir(run_dir, runs_root)
    except Preempted as e:
        log.warning("%s", e)
        e.hand_over()  # under submitit: requeue; else exit 128 + signal (a multirun stops too)
    except KeyboardInterrupt as e:  # Ctrl-C: one line (status "interrupted" where a run had started)
        log.error("%s", e if isinstance(e, Interrupted) else "interrupted (Ctrl-C); nothing was trained")
        failures.remove_unused_run_dir(run_dir, runs_root)
        raise SystemExit(130) from None
    except Exception as e:
        if not errors.is_user_error(e):
            raise
        multirun = in_multirun()
        msg = FAILED.report(e, multirun)
        # a refused run leaves no directory behind (a multirun job keeps its failed status.json)
        failures.remove_unused_run_dir(run_dir, runs_root)
        if multirun:
            # an Exception: Hydra marks this job failed and the rest of the grid runs on
            raise CompactJobFailed(msg) from None
        raise SystemExit(2) from None


def _excluded(cfg: DictConfig) -> str | None:
    from hydra.core.hydra_config import HydraConfig

    from transfersep.run.point import GRID_KEYS
    from transfersep.study.grid import load_grid

    choices = HydraConfig.get().runtime.choices
    return load_grid().excluded({k: str(choices.get(k)) for k in GRID_KEYS})


def _run(cfg: DictConfig) -> None:
    """The run; a folder it cannot write becomes a user error naming the folder and its setting."""
    from hydra.core.hydra_config import HydraConfig

    from transfersep.run.plan import check_objective_choice

    check_objective_choice(cfg, HydraConfig.get().runtime.choices.get("objective"))
    try:
        run(cfg)
    except OSError as e:
        if not errors.is_unwritable(e):
            raise
        settings = {"paths.runs_dir": cfg.paths.runs_dir, "paths.cache_dir": cfg.paths.cache_dir}
        raise errors.UnwritableError(errors.unwritable_line(e, settings)) from e


_PLAIN = re.compile(r"[\w./:@%+-]*")  # characters Hydra's grammar takes unquoted in a value


def expand_home(overrides: list[str]) -> list[str]:
    """``key=~/Bach10`` with ``~`` expanded as a shell would: Hydra's override grammar has no value
    that starts with ``~`` (it ends in LexerNoViableAltException), and a user who typed one meant a
    home folder. Quoted in the override's own syntax when the path holds characters the grammar
    reserves (spaces, commas...). Values Hydra already accepts are left as they are."""
    out = []
    for o in overrides:
        key, sep, value = o.partition("=")
        if sep and not key.startswith("-") and value.startswith("~") and not key.lstrip("+").startswith("~"):
            path = os.path.expanduser(value)
            if path != value:
                escaped = path.replace("\\", "\\\\").replace("'", "\\'")
                o = f"{key}={path}" if _PLAIN.fullmatch(path) else f"{key}='{escaped}'"
        out.append(o)
    return out


def main() -> None:
    """``python train.py`` / ``transfersep train``: Hydra's command line plus ``--verbose``
    (tracebacks of user errors on the console, as with ``HYDRA_FULL_ERROR=1``). Hydra's own errors
    (an unknown config option or key) are printed as one line too. A multirun whose jobs failed on
    user errors exits 2 and ends with one note on what to do."""
    if "--verbose" in sys.argv[1:]:
        sys.argv.remove("--verbose")
        os.environ[failures.VERBOSE_ENV] = "1"
    from transfersep.model.shipped import resolve_overrides

    sys.argv[1:] = resolve_overrides(expand_home(sys.argv[1:]))  # init_from=<shipped model name>
    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        os.environ[failures.VERBOSE_ENV] = "1"
    before = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra hands exceptions on unformatted; run.configline formats them
    try:
        hydra_main()
    except JobFailed as e:
        lines = FAILED.closing_lines()
        if not lines:  # the jobs ran elsewhere (SLURM): their lines are in their logs
            lines = [
                f"error: {e}",
                "a job of this multirun failed; `transfersep status` on the study folder "
                "lists every failed job with its error and logs",
            ]
        print("\n".join(lines), file=sys.stderr)
        raise SystemExit(2 if FAILED else e.code) from None
    except Exception as e:
        if failures.verbose():
            raise
        if errors.is_unwritable(e):  # Hydra creates the run directory and its train.log before the run
            print(f"error: {errors.unwritable_line(e, {'paths.runs_dir': None})}", file=sys.stderr)
        elif is_config_error(e):
            print(f"error: {config_error_line(e)}", file=sys.stderr)
        else:
            raise
        raise SystemExit(2) from None
    finally:
        if before is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = before


def _help(parser) -> str:
    """The verb's usage, summary and example (Hydra's own ``--help`` is about its config groups)."""
    return f"usage: {parser.prog} ...\n\n{parser.description}\n\n{parser.epilog}"


def train(argv: list[str], parser) -> int:
    """``transfersep train``: Hydra's command line (``main``); returns its exit code."""
    if argv and argv[0] in ("-h", "--help") and len(argv) == 1:
        from transfersep.run.point import GRID_KEYS

        print(
            _help(parser) + "\n\nEvery option of `python train.py` works here unchanged: Hydra overrides "
            f"(key=value; config groups {', '.join(GRID_KEYS)}, model, trainer, experiment in conf/; the "
            "study's values are in sweeps/grid.yaml), -m for a grid, --cfg job to print the resolved config, "
            "dry_run=true to check data roots and checkpoints, --verbose for tracebacks of user errors."
        )
        return 0
    sys.argv = ["transfersep train", *argv]  # Hydra reads its command line from sys.argv
    try:
        main()
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return 0


def probe(argv: list[str], parser) -> int:
    """``transfersep probe``: ``transfersep train finetune=zeroshot`` with its own help."""
    if argv and argv[0] in ("-h", "--help") and len(argv) == 1:
        print(
            _help(parser) + "\n\nThe zero-shot probe: k-means on a pretrained model's deep-clustering "
            "embeddings of each test mixture of the downstream set, one cluster per source, binary masks, "
            "SI-SDR on the fine-tunes' test excerpts with the best cluster-to-source assignment; nothing "
            "trains. The same as `transfersep train finetune=zeroshot ...` (every train option works). To "
            "hear the clusters of any recording: transfersep separate song.wav --model M --clusters K."
        )
        return 0
    return train([*argv, "finetune=zeroshot"], parser)


if __name__ == "__main__":
    main()
