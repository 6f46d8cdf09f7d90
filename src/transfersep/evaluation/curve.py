"""SI-SDR learning curve during training (the data of the paper's Figure 3).

``curve.csv`` in the run directory, rewritten atomically after every evaluation::

    step,sisdr_db,sisdr_db_<source 1>,...,sisdr_db_<source C>
    0,-12.31,...
    100,-3.02,...

``step`` is ``trainer.global_step`` (optimizer steps of *this* run: a fine-tune run counts from 0,
not from the end of pretraining); ``sisdr_db`` is the mean over the subset's excerpts of the
per-excerpt mean over non-silent sources (the definition of ``result.json``'s overall mean);
per-source columns are means over the excerpts where that source is not silent (``nan`` if none).
The same numbers go to every Lightning logger as ``curve/sisdr`` and ``curve/sisdr_<source>``.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import random
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import Dataset

from transfersep.evaluation.evaluate import score_excerpts
from transfersep.evaluation.sisdr import SILENCE_DB, excerpt_means
from transfersep.files import CURVE, atomic_write_text

log = logging.getLogger(__name__)


def _nanmean(x: np.ndarray) -> float:
    x = x[~np.isnan(x)]
    return float(x.mean()) if x.size else float("nan")


class SISDRCurve(L.Callback):
    """Every ``every_n_steps`` optimizer steps, score ``pl_module.separate`` on the first
    ``n_excerpts`` items of ``dataset`` (the fixed test list) and log/append the mean SI-SDR.

    Also scores step 0 before the first update (``at_start``) and the final step. Training is not
    disturbed: every submodule's train/eval flag and the torch (CPU + CUDA), numpy and ``random``
    RNG states are restored afterwards, so a run with the callback trains exactly as one without.
    Resuming keeps the rows of ``curve.csv`` up to the resumed step. Runs on global rank 0 only.
    """

    def __init__(
        self,
        dataset: Dataset,
        run_dir: str | Path,
        every_n_steps: int = 100,
        n_excerpts: int = 100,
        batch_size: int = 8,
        at_start: bool = True,
        silence_db: float = SILENCE_DB,
    ):
        super().__init__()
        if every_n_steps < 1:
            raise ValueError(f"every_n_steps must be >= 1, got {every_n_steps}")
        self.dataset = dataset
        self.path = Path(run_dir) / CURVE
        self.every_n_steps = int(every_n_steps)
        self.indices = list(range(min(int(n_excerpts), len(dataset))))
        if not self.indices:
            raise ValueError("SISDRCurve needs a non-empty test dataset and n_excerpts >= 1")
        self.batch_size = int(batch_size)
        self.at_start = at_start
        self.silence_db = silence_db
        self.rows: list[dict] = []

    # -- rows / file -------------------------------------------------------------------------
    def _load(self, up_to_step: int) -> None:
        self.rows = []
        if not self.path.exists():
            return
        with open(self.path, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                if int(row["step"]) <= up_to_step:  # later rows belong to a lost, unsaved future
                    self.rows.append({k: (int(v) if k == "step" else float(v)) for k, v in row.items()})

    def _write(self, sources: list[str]) -> None:
        cols = ["step", "sisdr_db"] + [f"sisdr_db_{s}" for s in sources]
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(cols)
        for r in self.rows:
            w.writerow([r.get(c, float("nan")) if c != "step" else r["step"] for c in cols])
        atomic_write_text(self.path, buf.getvalue())

    def _done(self, step: int) -> bool:
        return bool(self.rows) and self.rows[-1]["step"] >= step

    # -- evaluation --------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict:
        step = int(trainer.global_step)
        sources = list(pl_module.source_names)
        modes = {m: m.training for m in pl_module.modules()}
        cpu_rng = torch.get_rng_state()
        cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
        np_rng, py_rng = np.random.get_state(), random.getstate()
        pl_module.eval()
        try:
            scores, silent, _ = score_excerpts(
                pl_module.separate,
                self.dataset,
                len(sources),
                self.indices,
                self.batch_size,
                pl_module.device,
                self.silence_db,
            )
        except FloatingPointError as err:  # a diverging run: record it, don't kill training
            log.warning("SI-SDR curve at step %d: %s", step, err)
            scores = np.full((len(self.indices), len(sources)), np.nan)
            silent = np.zeros_like(scores, dtype=bool)
        finally:
            for m, mode in modes.items():
                m.train(mode)
            torch.set_rng_state(cpu_rng)
            if cuda_rng is not None:
                torch.cuda.set_rng_state_all(cuda_rng)
            np.random.set_state(np_rng)
            random.setstate(py_rng)
        row = {"step": step, "sisdr_db": _nanmean(excerpt_means(scores, silent))}
        for c, s in enumerate(sources):
            row[f"sisdr_db_{s}"] = _nanmean(scores[:, c])
        self.rows.append(row)
        self._write(sources)
        metrics = {"curve/sisdr": row["sisdr_db"]}
        metrics.update({f"curve/sisdr_{s}": row[f"sisdr_db_{s}"] for s in sources})
        metrics = {k: v for k, v in metrics.items() if not math.isnan(v)}
        for lg in trainer.loggers:
            lg.log_metrics(metrics, step=step)
        if "curve/sisdr" in metrics:  # visible to ModelCheckpoint / EarlyStopping monitors
            trainer.callback_metrics["curve/sisdr"] = torch.tensor(metrics["curve/sisdr"])
        return row

    # -- hooks -------------------------------------------------------------------------------
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        self._load(trainer.global_step)
        if self.at_start and not self._done(trainer.global_step):
            self.evaluate(trainer, pl_module)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx: int
    ) -> None:
        step = trainer.global_step
        # the guard also skips the extra calls of gradient accumulation (same global_step)
        if trainer.is_global_zero and step % self.every_n_steps == 0 and not self._done(step):
            self.evaluate(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero and not self._done(trainer.global_step):
            self.evaluate(trainer, pl_module)
