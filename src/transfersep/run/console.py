"""What a run says: the console/``train.log`` split, progress reports and the end-of-run summary.

Logging (``conf/hydra/job_logging/transfersep.yaml``): every record at INFO and above goes to the run
directory's ``train.log`` (appended across resumes: the run's own messages, Lightning's, Hydra's and
Python warnings); the console shows this tool's own messages (loggers ``transfersep*``) and
warnings/errors of everything else, so Lightning's notes (seed, devices, model summary, tips) are
in the log file only. Warnings go to stderr, the rest to stdout.

Progress: on an interactive terminal Lightning's progress bar (training) and a tqdm bar (the
test-set evaluation); when output goes to a file (SLURM, ``make demo``'s logs) plain lines every
10 % and at least every ``PLAIN_EVERY_S`` seconds: ``step 300/600 (50%), 2.4 steps/s, ETA 2m05s``.
``trainer.enable_progress_bar=false`` turns both off.
"""

from __future__ import annotations

import logging
import math
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transfersep.files import PACKAGE, RESULT, SCORES, TRAIN_LOG

log = logging.getLogger("transfersep")
PLAIN_EVERY_S = 60.0
TRACE_LOGGER = "transfersep.trace"  # tracebacks of failed runs: train.log only


class ConsoleFilter(logging.Filter):
    """The console's share of the records: ``transfersep*`` from INFO, everything from WARNING;
    ``max_level`` splits stdout (below WARNING) from stderr."""

    def __init__(self, max_level: int | str | None = None, min_level: int | str | None = None):
        super().__init__()
        self.max_level = logging._checkLevel(max_level) if max_level is not None else None
        self.min_level = logging._checkLevel(min_level) if min_level is not None else None

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == TRACE_LOGGER:
            return False
        if self.max_level is not None and record.levelno > self.max_level:
            return False
        if self.min_level is not None and record.levelno < self.min_level:
            return False
        own = record.name == "transfersep" or record.name.startswith("transfersep.")
        return record.levelno >= (logging.INFO if own else logging.WARNING)


def adopt_library_logging() -> None:
    """Route Lightning's loggers and Python warnings through the run's handlers (console + train.log).

    Lightning gives its logger a private stderr handler (with ``propagate=False``) when it is
    imported before logging is configured, which is always the case here: its records then never
    reached ``train.log``. Called in every job, after Hydra configured logging for it.
    """
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        lg = logging.getLogger(name)
        for h in list(lg.handlers):
            if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler):
                lg.removeHandler(h)
        lg.propagate = True
    logging.captureWarnings(True)
    # Lightning 2.6 calls a torch pytree API deprecated in torch 2.14 on every fit; nothing a user of
    # this tool can change (the call is inside Lightning), so that one message is dropped by text.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)", module=r"lightning\..*")
    # Lightning asks SLURMEnvironment.detect() at every fit (checkpoint_connector), which advises
    # "prepend srun" on any machine with SLURM installed; this tool reaches SLURM through its
    # launcher (hydra/launcher=slurm), where the advice does not apply, so that one message goes.
    warnings.filterwarnings("ignore", message=r"The `srun` command is available on your system but is not used")


def quiet_wandb(loggers: list) -> None:
    """W&B's console output reduced to its warnings and errors (``quiet``): its run header, history
    sparklines and sync notes repeat what the summary and the docs say. Lightning's WandbLogger
    always passes ``anonymous=None``, which wandb >= 0.19 answers with a deprecation warning; the
    key is dropped before ``wandb.init`` sees it (a ``None`` there requests nothing)."""
    for lg in loggers:
        init = getattr(lg, "_wandb_init", None)
        if not isinstance(init, dict) or getattr(lg, "_experiment", None) is not None:
            continue
        if init.get("anonymous") is None:
            init.pop("anonymous", None)
        if "settings" not in init:
            import wandb

            init["settings"] = wandb.Settings(quiet=True)


def wandb_note(run_dir: Path) -> str | None:
    """Where an offline W&B run lies and how to upload it (None when the run has none)."""
    offline = sorted(Path(run_dir).glob("wandb/offline-run-*"))
    if not offline:
        return None
    return f"W&B offline run: wandb sync {offline[-1]}"


def _fmt_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    s = int(round(seconds))
    h, m, s = s // 3600, s % 3600 // 60, s % 60
    return f"{h}h{m:02d}m{s:02d}s" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


class PlainProgress:
    """Periodic progress lines for non-interactive output: every 10 % and every ``every_s`` seconds."""

    def __init__(self, what: str, total: int, unit: str = "steps", start: int = 0, every_s: float = PLAIN_EVERY_S):
        self.what, self.total, self.unit, self.every_s = what, max(1, int(total)), unit, every_s
        self.start = self.done = int(start)
        self.t0 = self.last_t = time.monotonic()
        self.last_decile = self.done * 10 // self.total

    def update(self, done: int) -> None:
        self.done = int(done)
        now = time.monotonic()
        decile = self.done * 10 // self.total
        if decile > self.last_decile or now - self.last_t >= self.every_s or self.done >= self.total:
            self.last_decile, self.last_t = decile, now
            rate = (self.done - self.start) / max(now - self.t0, 1e-9)
            eta = (self.total - self.done) / rate if rate > 0 else float("inf")
            log.info(
                "%s: %d/%d %s (%d%%), %.2f %s/s, ETA %s",
                self.what,
                self.done,
                self.total,
                self.unit,
                100 * self.done // self.total,
                rate,
                self.unit,
                _fmt_duration(eta),
            )


def interactive() -> bool:
    return sys.stderr.isatty() and sys.stdout.isatty()


def training_progress(enabled: bool) -> tuple[bool, list]:
    """(``enable_progress_bar`` for the Trainer, extra callbacks): the bar on a terminal, lines otherwise."""
    if not enabled:
        return False, []
    if interactive():
        from lightning.pytorch.callbacks import TQDMProgressBar

        return True, [TQDMProgressBar()]  # tqdm, like the evaluation's bar (not Rich's, which may be absent)
    return False, [_plain_training_callback()]


def _plain_training_callback():
    import lightning as L

    class PlainTrainingProgress(L.Callback):
        """``PlainProgress`` lines for the training steps (resumed runs count from their step)."""

        def __init__(self) -> None:
            self.p: PlainProgress | None = None

        def on_train_start(self, trainer, pl_module) -> None:
            self.p = PlainProgress("training", int(trainer.max_steps), start=int(trainer.global_step))

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            if self.p is not None and trainer.is_global_zero:
                self.p.update(int(trainer.global_step))

    return PlainTrainingProgress()


def evaluation_progress(separate: Callable, n_items: int, batch_size: int, enabled: bool) -> tuple[Callable, Callable]:
    """Wrap the evaluation's ``separate`` (one call per batch) with a progress report.

    Returns (wrapped separate, close)."""
    total = max(1, math.ceil(n_items / max(1, batch_size)))
    if not enabled:
        return separate, lambda: None
    if interactive():
        from tqdm import tqdm

        bar = tqdm(total=n_items, desc="evaluation", unit="excerpt", leave=False)

        def run_bar(mix):
            out = separate(mix)
            bar.update(len(mix))
            return out

        return run_bar, bar.close
    plain = PlainProgress("evaluation", total, unit="batches")
    count = [0]

    def run_plain(mix):
        out = separate(mix)
        count[0] += 1
        plain.update(count[0])
        return out

    return run_plain, lambda: None


def data_notes(description: dict | None) -> list[str]:
    """The notes of a run's data that change what it trained on (stems padded or trimmed, songs
    lacking a class left out)."""
    return [n for n in (description or {}).get("notes", []) if "stem_lengths=" in n or "missing_sources=" in n]


def run_summary(plan: Any, result: dict | None, seconds: float | None, notes: list[str] | None = None) -> str:
    """The end-of-run summary: stage and grid point, what was done (steps trained, or for a probe what
    it probed), time, SI-SDR, and where the files are (only files that exist)."""
    run_dir = Path(plan.run_dir)
    result = result or {}
    extra = result.get("extra") or {}
    steps = result.get("steps", extra.get("steps"))
    if plan.stage == "zeroshot":  # nothing trains: say what was scored
        n = result.get("n_excerpts")
        what = f"probed {extra.get('method') or 'the pretrained model'} zero-shot, nothing trained"
        head = f"{plan.stage} {plan.subdir} finished: {what}" + (f", {n} test excerpts" if n else "")
    else:
        head = f"{plan.stage} {plan.subdir} finished: {steps if steps is not None else '?'} steps"
    if seconds is not None:  # under a second (a tiny probe): "0s" would read as nothing done
        head += f" in {_fmt_duration(seconds) if seconds >= 1 else f'{seconds:.1f}s'}"
    lines = [head]
    overall = (result.get("overall") or {}).get("mean")
    if overall is not None:
        per = result.get("per_source") or {}
        order = [s for s in result.get("sources") or [] if s in per] or list(per)  # the model's order
        parts = ", ".join(f"{s} {per[s]['mean']:.2f}" for s in order if per[s].get("mean") is not None)
        n = result.get("n_excerpts")
        lines.append(
            f"  SI-SDR  {overall:.2f} dB" + (f" over {n} excerpts" if n else "") + (f" ({parts})" if parts else "")
        )
    floor = extra.get("mixture_as_estimate_sisdr")
    if isinstance(floor, (int, float)):  # what the SI-SDR above reads against: no separation at all
        gain = f"; this model {overall - floor:+.2f} dB over it" if overall is not None else ""
        lines.append(f"  floor   {floor:.2f} dB with the mixture itself as every source's estimate{gain}")
    if plan.stage == "zeroshot" and extra.get("checkpoint"):
        lines.append(f"  probed  {extra['checkpoint']}")
    if (run_dir / PACKAGE).is_file():
        lines.append(f"  model   {run_dir / PACKAGE}")
    scores = [str(run_dir / f) for f in (SCORES, RESULT) if (run_dir / f).is_file()]
    if scores:
        lines.append(f"  scores  {', '.join(scores)}")
    if (run_dir / TRAIN_LOG).is_file():
        lines.append(f"  log     {run_dir / TRAIN_LOG}")
    wb = wandb_note(run_dir)
    if wb:
        lines.append(f"  wandb   {wb.split(': ', 1)[1]}")
    for note in notes or []:
        lines.append(f"  note    {note}")
    return "\n".join(lines)
