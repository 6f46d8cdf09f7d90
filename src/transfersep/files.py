"""How the tool writes its files: the names of the files in a run directory
(``<runs_dir>/<study>/<stage>/<run>/``), and atomic writes, so that a reader (or a killed job) never
sees half a file.

Every module that writes or reads a run's file takes its name from here; nothing else in the
package spells them out. This module imports only the standard library, so the lightest command can
use it.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

STATUS = "status.json"  # the run's state, grid point, job and result (read_status; run.records says what)
LOCK = "lock.json"  # which job owns the run directory (run.lock)
TRAIN_LOG = "train.log"  # the run's log, appended across resumes (run.console)
LAST_CKPT = "checkpoints/last.ckpt"  # the training state a killed run resumes from (run.resume)
FINAL_CKPT = "final.ckpt"  # the trained run's Lightning checkpoint (run.fit)
PACKAGE = "model.safetensors"  # the trained model as a self-describing package (model.package)
SCORES = "scores.csv"  # SI-SDR per test excerpt and source (evaluation.evaluate)
RESULT = "result.json"  # the evaluation's summary, written last (evaluation.evaluate)
CURVE = "curve.csv"  # SI-SDR along training (evaluation.curve)
RUN_CONFIG = "run_config.json"  # the settings that shape the weights, recorded at the first launch (run.identity)
KEPT_DIR = "kept"  # weights kept at listed iterations, kept/step-<n>.ckpt (run.kept)
KEPT_INDEX = "kept.json"  # the kept steps and their digests, in KEPT_DIR (run.kept)
SUPERSEDED = "superseded"  # outputs set aside, superseded/<UTC time>/ (run.provenance)


# Called as guard(path, tmp) before a write begins (tmp None) and again before its rename (tmp: the
# finished temporary file). A guard that must refuse the write ends the process itself (a job that
# lost its run directory, ``transfersep.run.lock``), removing ``tmp`` first: nothing lands.
_GUARDS: list[Callable[[Path, Path | None], None]] = []


def add_guard(guard: Callable[[Path, Path | None], None]) -> None:
    _GUARDS.append(guard)


def remove_guard(guard: Callable[[Path, Path | None], None]) -> None:
    if guard in _GUARDS:
        _GUARDS.remove(guard)


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it into place.

    The temporary file lives in the same directory so ``os.replace`` is atomic on POSIX.
    """
    path = Path(path)
    for guard in list(_GUARDS):
        guard(path, None)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        # mkstemp makes 0600 files; results on a shared cluster should be readable like any other
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        for guard in list(_GUARDS):
            guard(path, Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    def _w(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())

    return atomic_write(path, _w)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_status(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """A run's ``status.json``, or None where there is none (or it is not a JSON object). The one
    reader of the file; its one writer is ``write_status`` (what it holds: ``run.records``)."""
    try:
        st = json.loads((Path(run_dir) / STATUS).read_text())
    except (FileNotFoundError, ValueError):  # not there yet, or written by hand and broken
        return None
    return st if isinstance(st, dict) else None


def write_status(run_dir: str | os.PathLike, record: dict[str, Any]) -> Path:
    """Replace a run's ``status.json`` with ``record`` (atomically; ``run.records`` composes it)."""
    return atomic_write_json(Path(run_dir) / STATUS, record)
