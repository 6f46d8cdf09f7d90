"""Runs that survive being killed: ``last.ckpt`` at step boundaries, a clean stop on the signals
SLURM and users send, and metrics that continue across a resume.

A run killed at any point (SIGKILL, or SIGTERM / SIGUSR1 / SIGUSR2) and launched again with the
same grid point resumes from ``checkpoints/last.ckpt`` and ends with the weights, optimiser,
LR-scheduler and AutoClip state an uninterrupted run would have (``tests/run/test_resume.py``).

Why not Lightning's ``ModelCheckpoint(every_n_train_steps=...)``: it saves in
``on_train_batch_end``, before that step's validation and LR-plateau update; Lightning resumes
from such a checkpoint by skipping that validation, so the plateau scheduler of a resumed run
misses one observation and drifts from an uninterrupted run. ``ResumableCheckpoint`` saves in
``on_train_batch_start`` of the next step instead, when every effect of the previous step
(optimiser, AutoClip, validation, plateau scheduler, SI-SDR curve) is complete.

``last.ckpt`` is also written when training reaches its budget, before ``final.ckpt``, the package
and the evaluation: a run stopped after that (Ctrl-C or a kill during the evaluation) resumes at
its end and only evaluates, whatever ``checkpoint_every_n_steps`` is.

Signals: while the training loop runs, SIGTERM, SIGUSR1 and SIGUSR2 only set a flag; at the next
step boundary (or at the end of training) every rank writes ``last.ckpt`` and the fit stops with
``Preempted``. ``Preempted.hand_over()`` then gives the signal to whoever handled it before the
fit: under submitit (``hydra/launcher=slurm``) SIGUSR2 is submitit's time-limit/preemption signal
and its handler requeues the job, whose rerun resumes; otherwise the process exits with status
128 + signal number. Outside the training loop the original handlers act immediately.
"""

from __future__ import annotations

import csv
import io
import os
import signal
import threading
from pathlib import Path
from typing import Any

import lightning as L
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment

from transfersep.files import atomic_write, atomic_write_text

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)


def _name(signum: int | None) -> str:
    return signal.Signals(signum).name if signum else "a stop signal on another rank"


class Preempted(InterruptedError):
    """The fit stopped on a signal after writing ``last.ckpt`` (the run stays "running")."""

    def __init__(self, signum: int | None, step: int, previous_handler: Any = None):
        super().__init__(
            f"stopped by {_name(signum)} at step {step}; last.ckpt written, launch the same grid point again to resume"
        )
        self.signum, self.step, self.previous_handler = signum, step, previous_handler

    def hand_over(self) -> None:
        """Act on the signal as the process would have without us; never returns."""
        prev = self.previous_handler
        if self.signum and callable(prev):
            prev(self.signum, None)  # submitit's SIGUSR2 handler requeues the job and exits
        raise SystemExit(128 + (self.signum or signal.SIGTERM))


class Interrupted(KeyboardInterrupt):
    """Ctrl-C stopped the run (status "interrupted"); ``step``: optimiser steps done, where known."""

    def __init__(self, step: int | None = None, message: str = "interrupted (Ctrl-C)"):
        super().__init__(step, message)
        self.step = step

    def __str__(self) -> str:
        return str(self.args[1])


class ResumableCheckpoint(L.Callback):
    """Writes ``path`` (``last.ckpt``) every ``every_n_steps`` optimiser steps, at a step boundary,
    and on SIGTERM / SIGUSR1 / SIGUSR2 writes it at the next boundary and stops the fit."""

    def __init__(self, path: str | os.PathLike, every_n_steps: int, signals: tuple[int, ...] = STOP_SIGNALS):
        super().__init__()
        if every_n_steps < 1:
            raise ValueError(f"checkpoint_every_n_steps must be >= 1, got {every_n_steps}")
        self.path = Path(path)
        self.every_n_steps = int(every_n_steps)
        self.signals = tuple(signals)
        self._original: dict[int, Any] = {}  # handlers before Lightning's (submitit's, or defaults)
        self._replaced: dict[int, Any] = {}  # handlers our own replaced while training
        self._signum: int | None = None
        self._start_step = 0
        self._saved_step: int | None = None
        self._mid_loop = False

    # -- signals -------------------------------------------------------------------------------
    @staticmethod
    def _main_thread() -> bool:
        return threading.current_thread() is threading.main_thread()

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self._signum is None:
            self._signum = signum
            # os.write is async-signal-safe; logging from a handler can deadlock on its lock
            os.write(
                2,
                f"[transfersep] {signal.Signals(signum).name}: stopping at the next step boundary "
                f"after writing {self.path}\n".encode(),
            )

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # called before Lightning registers its own SIGTERM handler
        if self._main_thread():
            self._original = {s: signal.getsignal(s) for s in self.signals}

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start_step = trainer.global_step
        if trainer.received_sigterm:  # caught by Lightning's handler during setup or sanity checks
            self._signum = signal.SIGTERM
        if self._main_thread():
            for s in self.signals:
                self._replaced[s] = signal.signal(s, self._on_signal)

    def _restore(self) -> None:
        if self._main_thread():
            for s, h in self._replaced.items():
                signal.signal(s, h)
        self._replaced = {}

    def _stop(self, trainer: L.Trainer) -> bool:
        return trainer.strategy.reduce_boolean_decision(self._signum is not None, all=False)

    def _preempted(self, trainer: L.Trainer) -> Preempted:
        return Preempted(self._signum, trainer.global_step, self._original.get(self._signum))

    # -- saving --------------------------------------------------------------------------------
    def _save(self, trainer: L.Trainer, mid_loop: bool) -> None:
        self._mid_loop = mid_loop
        try:
            # weights_only=False: the full training state (optimiser, loops), said explicitly
            trainer.save_checkpoint(self.path, weights_only=False)  # rank 0 writes (atomically: AtomicCheckpointIO)
            self._saved_step = trainer.global_step
        finally:
            self._mid_loop = False

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        if not self._mid_loop:
            return
        # Make the loop counters those of Lightning's own checkpoint from on_train_batch_end of
        # the previous step: its restart path re-counts that step, skips that step's validation
        # (which did run: its result is in the saved scheduler state) and continues the batch and
        # validation cadence exactly. Left as they are at a step start, the batch fetched for the
        # next step counts as "ready" and every later validation runs one step early.
        loops = checkpoint["loops"]["fit_loop"]
        for part in ("total", "current"):
            p = loops["epoch_loop.batch_progress"][part]
            p["ready"] = p["started"]
            p["completed"] = p["processed"] - 1
        state = loops["epoch_loop.state_dict"]
        state["_batches_that_stepped"] = state.get("_batches_that_stepped", 0) - 1

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step
        stop = self._stop(trainer)
        # at the start step there is nothing new to save (last.ckpt holds it, or nothing trained)
        if step > self._start_step and (stop or step % self.every_n_steps == 0):
            self._save(trainer, mid_loop=True)
        if stop:
            raise self._preempted(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # a signal during the last step or its validation: training is complete, stop anyway so
        # a requeued job starts before the time limit; its rerun only writes final.ckpt and scores
        self._restore()
        stop = self._stop(trainer)
        # the final step too: whatever stops the run after training (Ctrl-C or a kill during the
        # evaluation, a budget below the cadence) must not cost the training
        if stop or (trainer.global_step > self._start_step and trainer.global_step != self._saved_step):
            self._save(trainer, mid_loop=False)
        if stop:
            raise self._preempted(trainer)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._restore()

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._restore()


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's torch checkpoint IO, but written to a temp file and renamed into place, so a job
    killed while saving leaves the previous ``last.ckpt`` intact."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        import torch

        atomic_write(path, lambda tmp: torch.save(checkpoint, tmp))


def cluster_plugins() -> list:
    """Under SLURM: Lightning's cluster environment with its own auto-requeue (SIGUSR1) off, so
    submitit alone requeues (on SIGUSR2) and the two never both resubmit one job."""
    from lightning.fabric.plugins.environments import SLURMEnvironment

    return [SLURMEnvironment(auto_requeue=False)] if SLURMEnvironment.detect() else []


class _ResumingWriter(ExperimentWriter):
    """Keeps ``metrics.csv`` of earlier attempts up to the step this attempt resumed from."""

    def _check_log_dir_exists(self) -> None:  # Lightning's version deletes metrics.csv
        self._merged = False

    def save(self) -> None:
        if self.metrics and not getattr(self, "_merged", True) and os.path.isfile(self.metrics_file_path):
            first = min(int(m["step"]) for m in self.metrics)
            with open(self.metrics_file_path, newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f)
                header = list(reader.fieldnames or [])
                # rows at or after the resumed step belong to work lost with the killed attempt
                kept = [r for r in reader if r.get("step") and int(float(r["step"])) < first]
            self.metrics_keys = sorted(set(self.metrics_keys) | set(header))
            if kept:
                buf = io.StringIO()
                w = csv.DictWriter(buf, fieldnames=self.metrics_keys)  # "\r\n" rows, as Lightning writes
                w.writeheader()
                w.writerows(kept)
                atomic_write_text(self.metrics_file_path, buf.getvalue())
            else:
                os.unlink(self.metrics_file_path)
                self.metrics_keys = []
        if self.metrics:
            self._merged = True
        super().save()


class ResumableCSVLogger(CSVLogger):
    """Lightning's CSVLogger, except that a resumed run continues ``metrics.csv`` (rows before the
    resumed step are kept) instead of deleting it."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _ResumingWriter(log_dir=self.log_dir)
        return self._experiment
