"""User errors of ``train.py`` / ``transfersep train``: one line, exit code 2, commands that fit.

A user error is something the user fixes by changing a path, a file or a config value: a dataset
root that is not the dataset (``DatasetError``), a missing or damaged checkpoint/model
(``MissingCheckpointError``, ``ModelLoadError``), an unreadable audio file (``AudioReadError``), a
grid point that is no run (``PlanError``), a config value of the wrong type or unknown key
(OmegaConf's errors). It is printed as one line naming the key or file and the fix; the traceback
goes to ``train.log`` only, or to the console with ``--verbose`` or ``HYDRA_FULL_ERROR=1``.
Anything else is a bug and keeps its traceback.

In a multirun each failed job prints its line and the grid goes on; at the end the command exits 2
and, when datasets were missing, says once how to try the study without them.
"""

from __future__ import annotations

import logging
import os
import shlex
from pathlib import Path
from typing import Any

from hydra.errors import CompactHydraException

from transfersep.files import TRAIN_LOG
from transfersep.run.plan import GRID_KEYS

log = logging.getLogger("transfersep")
trace = logging.getLogger("transfersep.trace")

VERBOSE_ENV = "TRANSFERSEP_VERBOSE"
# overrides that choose the grid point or act on one run only; everything else (experiment, paths,
# data, model, study, seed, budgets, ...) is carried into a suggested command
_NOT_CARRIED = (
    *GRID_KEYS,
    "fold",  # a parent pretraining has no fold (the seed is carried: a replicate starts from its own)
    "init_from",
    "rerun",
    "dry_run",
    "evaluate",
    "hydra",
    "sweeps",
    "curve",
)
DEMO_HINT = (
    "to try the study without the datasets: `make demo` (renders a small corpus from real scores and "
    "runs it), or render the demo corpus with `python -m transfersep.demo.corpus demo_data` and add "
    "`experiment=demo paths.data_dir=demo_data` to this command"
)


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


def check_checkpoint(path: Path, what: str, fix: str) -> None:
    """Refuse a damaged Lightning checkpoint before a run starts (``CheckpointError``, one line).

    Lightning checkpoints are zip archives (``torch.save``); reading every member's CRC finds a
    truncated or overwritten file without unpickling anything."""
    import zipfile

    if not path.is_file():
        return
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise CheckpointError(f"{path}: {what} is damaged ({e}); {fix}") from None
    if bad is not None:
        raise CheckpointError(f"{path}: {what} is damaged (member {bad} fails its checksum); {fix}")


class ConfigValueError(ValueError):
    """A config value that cannot work; the message names the key."""


class ModelSizeError(CheckpointError):
    """The run's ``model`` config contradicts the sizes its pretrained model records."""


def check_sizes(path: Path, model: dict, what: str, fix: str) -> None:
    """Refuse (``ModelSizeError``, one line naming each key with both values) a run whose model
    config contradicts the sizes ``path`` (a package or checkpoint) records: the network is built
    from the file, so the run's recorded config must say what it trains. An unreadable file is a
    ``CheckpointError``."""
    from transfersep.model.package import ModelLoadError, recorded_model, size_conflicts

    try:
        recorded = recorded_model(path)
    except ModelLoadError as e:
        raise CheckpointError(one_line(e)) from None
    bad = size_conflicts(recorded, model)
    if bad:
        has = ", ".join(f"model.{k}={r}" for k, r, _ in bad)
        says = ", ".join(f"model.{k}={w}" for k, _, w in bad)
        raise ModelSizeError(
            f"{path}: {what} is a ChimeraNet with {has}, this run's config says {says}; {fix}: "
            f"add {' '.join(f'model.{k}={r}' for k, r, _ in bad)}"
        )


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


# failures of this process's multirun jobs: (job overrides, one-line message, data root missing)
FAILED_JOBS: list[tuple[str, str, bool]] = []


def user_error_types() -> tuple[type, ...]:
    from omegaconf.errors import OmegaConfBaseException

    from transfersep.audio import AudioReadError
    from transfersep.data.index import DatasetError
    from transfersep.model.package import ModelLoadError
    from transfersep.run.plan import PlanError

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


def is_config_error(e: BaseException) -> bool:
    """Hydra's and OmegaConf's errors about the command line (unknown option, key or syntax)."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    return isinstance(e, (HydraException, OmegaConfBaseException))


def config_error_line(e: BaseException) -> str:
    """Hydra's several-line message as one line: the option lists joined, the search path dropped.
    An error of the tool's own raised inside a resolver (a malformed ``sweeps/grid.yaml`` behind
    ``${grid_sweep:...}``) is shown as itself, without Hydra's wrapping."""
    inner: BaseException | None = e
    seen: set[int] = set()
    while inner is not None and id(inner) not in seen:
        if isinstance(inner, ValueError) and type(inner).__module__.startswith("transfersep."):
            return one_line(inner)
        if str(e).startswith("Could not override") and (line := unknown_key_line(inner)):
            return line
        seen.add(id(inner))
        inner = inner.__cause__ or inner.__context__
    if line := respelled_line(str(e)):
        return line
    parts: list[str] = []
    listing = False  # after "...:" Hydra lists options one per indented line
    for raw in str(e).splitlines():
        line = raw.strip()
        if line.startswith("Config search path"):
            break
        if not line or line.startswith(("provider=", "object_type=")):
            continue
        if listing and raw.startswith(("\t", " ")):
            parts[-1] += (" " if parts[-1].endswith(":") else ", ") + line
            continue
        listing = line.endswith(":")
        parts.append(line.rstrip("."))
    return "; ".join(parts) or type(e).__name__


def respelled_line(message: str) -> str | None:
    """``pretrain=slakh_mixit: write pretrain=slakh objective=mixit`` for Hydra's missing option of a
    former corpus name that held an objective (``model.objectives.respelling``), else None."""
    import re

    from transfersep.model.objectives import respelling

    found = re.search(r"Could not find 'pretrain/(\w+)'", message)
    instead = respelling(found.group(1)) if found else None
    if instead is None:
        return None
    return f"pretrain={found.group(1)}: the objective is its own key; write {instead}"


def unknown_key_line(e: BaseException) -> str | None:
    """``no key budget.finetun; did you mean budget.finetune`` for OmegaConf's error about a key the
    config lacks (None for any other error). Hydra's own advice, ``+budget.finetun=100``, is left
    out: a mistyped key is far likelier than a wish to add one, and adding it would train with
    the intended key at its default, silently."""
    import difflib

    full, key, parent = (getattr(e, a, None) for a in ("full_key", "key", "parent_node"))
    if not full or key is None or parent is None or not hasattr(parent, "keys"):
        return None
    keys = [str(k) for k in parent.keys()]
    prefix = str(full)[: -len(str(key))]  # "budget." of "budget.finetun"; "" at the top level
    close = difflib.get_close_matches(str(key), keys, n=1, cutoff=0.6)
    if close:
        return f"no key {full}; did you mean {prefix}{close[0]}"
    where = f"under {prefix.rstrip('.')}" if prefix else "at the top level"
    return f"no key {full}; the keys {where} are {', '.join(keys)}"


def one_line(e: BaseException) -> str:
    """The message on one line (continuation lines joined with '; ')."""
    parts = [p.strip() for p in str(e).splitlines() if p.strip()]
    return "; ".join(parts) if parts else type(e).__name__


def verbose() -> bool:
    """``--verbose`` or the user's ``HYDRA_FULL_ERROR=1`` (``cli.train.main`` turns both into VERBOSE_ENV)."""
    return os.environ.get(VERBOSE_ENV) == "1"


def task_overrides() -> list[str]:
    """This job's command-line overrides (empty outside Hydra)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.initialized():
            return list(HydraConfig.get().overrides.task)
    except Exception:  # outside a Hydra job: nothing to carry
        pass
    return []


def _key(override: str) -> str:
    return override.lstrip("+~").split("=", 1)[0]


def carried_overrides(overrides: list[str] | None = None) -> list[str]:
    """The overrides a suggested command keeps: all but the grid point's own and one-run switches."""
    out = []
    for o in task_overrides() if overrides is None else overrides:
        k = _key(o)
        if k.split(".")[0].split("/")[0] in _NOT_CARRIED:
            continue
        out.append(o)
    return out


def train_command(grid: dict[str, str], study: str | None = None, overrides: list[str] | None = None) -> str:
    """``transfersep train <grid point> study=<study> <the user's other overrides>``, shell-quoted."""
    carried = carried_overrides(overrides)
    words = [f"{k}={v}" for k, v in grid.items()]
    if study is not None and not any(_key(o) == "study" for o in carried):
        words.append(f"study={study}")
    return " ".join(["transfersep", "train", *(shlex.quote(w) for w in words + carried)])


def parent_problem(plan: Any, study: str) -> str | None:
    """The one-line reason a fine-tune cannot start (its parent missing), or None; a parent
    checkpoint that exists but is damaged raises ``CheckpointError``, one whose model sizes the
    run's config contradicts ``ModelSizeError`` (``check_sizes``)."""
    if plan.parent_ckpt is None:
        return None
    if plan.parent_ckpt.exists():
        if plan.parent_ckpt.suffix != ".safetensors":  # packages carry their own checksum (ModelLoadError)
            fix = (
                "point init_from at a good model package or checkpoint"
                if plan.init_from is not None
                else f"train its run again: {train_command(_parent_grid(plan), study)} rerun=true"
            )
            check_checkpoint(plan.parent_ckpt, "the pretrained checkpoint", fix)
        if getattr(plan, "model", None):
            what, fix = (
                ("the init_from model", "run with the sizes it was trained with")
                if plan.init_from is not None
                else ("the pretrained model of this grid point", "run with the sizes of its pretraining")
            )
            check_sizes(plan.parent_ckpt, plan.model, what, fix)
        return None
    if plan.init_from is not None:
        return (
            f"init_from={plan.init_from}: no such file; point init_from at an existing model package "
            "(.safetensors, see `transfersep export`) or checkpoint (.ckpt)"
        )
    cmd = train_command(_parent_grid(plan), study)
    return (
        f"fine-tuning {plan.subdir} needs the pretrained checkpoint {plan.parent_ckpt}, which does not "
        f"exist; produce it first with: {cmd}"
    )


def _parent_grid(plan: Any) -> dict[str, str]:
    from transfersep.model.objectives import split_name

    corpus, objective = split_name(plan.grid_point["pretrain"])  # records name the pretraining as its folder
    return {
        "pretrain": corpus,
        **({"objective": objective} if objective != "dc" else {}),
        "augment": plan.grid_point["augment"],
    }


def report(e: BaseException, multirun: bool) -> str:
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
        FAILED_JOBS.append((label, msg, is_missing_data(e)))
    return msg


def closing_lines() -> list[str]:
    """What a multirun prints once at its end about its failed jobs (empty when none failed)."""
    if not FAILED_JOBS:
        return []
    lines = [
        f"{len(FAILED_JOBS)} job(s) failed (one line each above); fix the key or file they name and run "
        "the same command again: finished runs are skipped"
    ]
    if any(missing for *_, missing in FAILED_JOBS):
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
