"""User errors of ``train.py`` / ``transfersep train``: the exception types and which errors are the user's.

A user error is something the user fixes by changing a path, a file or a config value: a dataset
root that is not the dataset (``DatasetError``), a missing or damaged checkpoint/model
(``MissingCheckpointError``, ``ModelLoadError``), an unreadable audio file (``AudioReadError``), a
grid point that is no run (``PlanError``), a config value of the wrong type or unknown key
(OmegaConf's errors). It is printed as one line naming the key or file and the fix (``one_line``);
the traceback goes to ``train.log`` only (``run.failures``). Anything else is a bug and keeps its
traceback.

Beside this module: ``run.configline`` (Hydra's and OmegaConf's errors as one line),
``run.suggest`` (the command a message suggests), ``run.parent`` (the checks of a fine-tune's
parent) and ``run.failures`` (the failed jobs of a multirun, and cleaning up after a refusal).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.errors import CompactHydraException


class MissingCheckpointError(FileNotFoundError):
    """A fine-tune's pretrained checkpoint (or ``init_from``) does not exist."""


class JobFailed(Exception):
    """A multirun job stopped by a user error (its line was printed); Hydra marks the job failed.
    ``code``: the exit code the multirun ends with (2: a user error, dry-run findings included)."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message, code)  # both in args: the exception pickles (submitit jobs)
        self.code = code

    def __str__(self) -> str:
        return str(self.args[0])


class CompactJobFailed(JobFailed, CompactHydraException):
    """Hydra prints a compact exception as its message only, without a traceback."""


class CheckpointError(ValueError):
    """A checkpoint that exists but cannot be read (truncated, not a checkpoint)."""


class ConfigValueError(ValueError):
    """A config value that cannot work; the message names the key."""


class ModelSizeError(CheckpointError):
    """The run's ``model`` config contradicts the sizes its pretrained model records."""


class UnwritableError(ConfigValueError):
    """A folder the run must write into is read-only (or not the user's)."""


def is_unwritable(e: BaseException) -> bool:
    import errno

    return isinstance(e, OSError) and e.errno in (errno.EACCES, errno.EPERM, errno.EROFS)


def unwritable_line(e: OSError, settings: dict[str, Any]) -> str:
    """One line naming the folder that refused a write and the setting that chose it. ``settings``:
    ``{key: folder}``; a folder of None stands for any (the only setting that can be meant)."""
    target = Path(e.filename or ".").expanduser().absolute()
    folder = target if target.is_dir() else target.parent
    while not folder.exists() and folder != folder.parent:  # mkdir -p stops at the first it cannot make
        folder = folder.parent
    key = next(
        (k for k, root in settings.items() if root is None or _within(target, Path(str(root)))),
        None,
    )
    where = f"point {key} at a folder you can write" if key else "run it where you can write"
    return f"cannot write in {folder}: {e.strerror or e}; make the folder writable or {where}"


def _within(path: Path, root: Path) -> bool:
    root = root.expanduser().absolute()
    return path == root or root in path.parents


def user_error_types() -> tuple[type, ...]:
    from omegaconf.errors import OmegaConfBaseException

    from transfersep.audio import AudioReadError
    from transfersep.data.index import DatasetError
    from transfersep.model.package import ModelLoadError
    from transfersep.run.point import PlanError

    return (
        PlanError,
        MissingCheckpointError,
        CheckpointError,
        ConfigValueError,
        DatasetError,
        ModelLoadError,
        AudioReadError,
        OmegaConfBaseException,
    )


def is_user_error(e: BaseException) -> bool:
    return isinstance(e, user_error_types())


def is_missing_data(e: BaseException) -> bool:
    from transfersep.data.index import DatasetError

    return isinstance(e, DatasetError) and "does not exist" in str(e)


def one_line(e: BaseException) -> str:
    """The message on one line (continuation lines joined with '; ')."""
    parts = [p.strip() for p in str(e).splitlines() if p.strip()]
    return "; ".join(parts) if parts else type(e).__name__
