"""What a failed run leaves: its line on the console, its traceback in ``train.log``, the multirun's
closing note about its failed jobs, and no run directory where nothing was done.

In a multirun each failed job prints its line and the grid goes on; at the end the command exits 2
and, when datasets were missing, says once how to try the study without them (``FailedJobs``).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from transfersep.files import TRAIN_LOG
from transfersep.run.errors import is_missing_data, one_line
from transfersep.run.suggest import task_overrides

log = logging.getLogger("transfersep")
trace = logging.getLogger("transfersep.trace")

VERBOSE_ENV = "TRANSFERSEP_VERBOSE"
DEMO_HINT = (
    "to try the study without the datasets: `make demo` (renders a small corpus from real scores and "
    "runs it), or render the demo corpus with `python -m transfersep.demo.corpus demo_data` and add "
    "`experiment=demo paths.data_dir=demo_data` to this command"
)


def verbose() -> bool:
    """``--verbose`` or the user's ``HYDRA_FULL_ERROR=1`` (``cli.train.main`` turns both into VERBOSE_ENV)."""
    return os.environ.get(VERBOSE_ENV) == "1"


@dataclass
class FailedJobs:
    """The failed jobs of one process's multirun: (job overrides, one-line message, data root missing)."""

    jobs: list[tuple[str, str, bool]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.jobs)

    def report(self, e: BaseException, multirun: bool) -> str:
        """Print the one-line error (console + train.log), the traceback to train.log only (or the
        console when verbose), and remember it for the multirun's closing lines."""
        import traceback

        msg = one_line(e)
        label = " ".join(task_overrides()) if multirun else ""
        trace.error("".join(traceback.format_exception(e)).rstrip())
        if verbose():
            log.error("%s", "".join(traceback.format_exception(e)).rstrip())
        log.error("error: %s%s", f"[{label}] " if label else "", msg)
        if multirun:
            self.jobs.append((label, msg, is_missing_data(e)))
        return msg

    def closing_lines(self) -> list[str]:
        """What a multirun prints once at its end about its failed jobs (empty when none failed)."""
        if not self.jobs:
            return []
        lines = [
            f"{len(self.jobs)} job(s) failed (one line each above); fix the key or file they name and run "
            "the same command again: finished runs are skipped"
        ]
        if any(missing for *_, missing in self.jobs):
            lines.append(DEMO_HINT)
        return lines


def remove_unused_run_dir(run_dir: Path, runs_root: Path) -> None:
    """Remove what Hydra created for a run that stopped before doing anything (``.hydra/``,
    ``train.log``): a refused command leaves no run directory. Never touches a directory holding
    anything else (an earlier attempt's status, checkpoints, results)."""
    import shutil

    run_dir = Path(run_dir)
    if not run_dir.is_dir() or {p.name for p in run_dir.iterdir()} - {".hydra", TRAIN_LOG}:
        return
    shutil.rmtree(run_dir / ".hydra", ignore_errors=True)
    try:
        (run_dir / TRAIN_LOG).unlink(missing_ok=True)
    except OSError:  # a folder that refuses the removal keeps it; the error was already said
        return
    d, stop = run_dir, Path(runs_root).resolve()
    while d.resolve() != stop and stop in d.resolve().parents:
        try:
            d.rmdir()
        except OSError:
            break
        d = d.parent
