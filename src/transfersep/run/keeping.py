"""Keeping a training run's weights at listed iterations (``run.kept``), and scoring a baseline's kept weights.

``KeepCheckpoints`` writes ``kept/step-<n>.ckpt`` (atomically, through the trainer's checkpoint IO)
when the run has taken exactly ``n`` optimiser steps, and records the digest of its weights in
``kept/kept.json`` at once, so a run killed later keeps what it kept and its resume (from
``last.ckpt``) does not write it again, even when it resumes from before ``n`` (seeded training
reaches the same weights). A run that starts from step 0 sets aside what an
earlier training of the same directory kept (``superseded/<UTC time>/kept``): kept weights always
belong to the training that stands in the directory.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import lightning as L

from transfersep.files import KEPT_DIR, RESULT
from transfersep.run.kept import kept_ckpt, kept_eval_dir, read_kept, record_kept
from transfersep.run.provenance import superseded_dir

log = logging.getLogger("transfersep")


class KeepCheckpoints(L.Callback):
    """Keeps the weights at each of ``steps`` (optimiser steps taken) in ``<run_dir>/kept/``."""

    def __init__(self, run_dir: str | os.PathLike, steps: tuple[int, ...] | list[int]):
        super().__init__()
        self.run_dir = Path(run_dir)
        self.steps = frozenset(int(s) for s in steps)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # by now a resumed run has its step back; one that starts afresh owns no earlier kept weights
        kept = self.run_dir / KEPT_DIR
        if trainer.global_step == 0 and kept.exists() and trainer.is_global_zero:
            dest = superseded_dir(self.run_dir)
            os.replace(kept, dest / KEPT_DIR)
            log.info("%s: weights kept by an earlier training moved to %s", self.run_dir.name, dest / KEPT_DIR)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        step = int(trainer.global_step)
        if step not in self.steps or step in read_kept(self.run_dir):
            return
        from transfersep.model.package import weights_digest

        path = kept_ckpt(self.run_dir, step)
        path.parent.mkdir(parents=True, exist_ok=True)
        trainer.save_checkpoint(path, weights_only=True)  # every rank calls it; rank 0 writes
        if trainer.is_global_zero:
            record_kept(self.run_dir, step, path, weights_digest(pl_module.model.state_dict()))
            log.info("%s: kept the weights of step %d in %s", self.run_dir.name, step, path)


def evaluate_kept(cfg: Any, system: Any, dm: Any, plan: Any) -> dict[int, float]:
    """Score each kept checkpoint of a baseline on the full test list (``kept/step-<n>/``); a step
    already scored is not scored again. Leaves ``system`` holding the last weights it loaded.
    Returns ``{step: mean SI-SDR}`` of the steps scored now."""
    import torch

    from transfersep.run.scoring import KEPT, score_and_record

    done: dict[int, float] = {}
    for step in sorted(read_kept(plan.run_dir)):
        out = kept_eval_dir(plan.run_dir, step)
        if (out / RESULT).exists():
            continue
        ckpt = torch.load(kept_ckpt(plan.run_dir, step), map_location=system.device, weights_only=False)
        system.load_state_dict(ckpt["state_dict"])
        out.mkdir(parents=True, exist_ok=True)
        result = score_and_record(
            cfg,
            plan,
            dm,
            system.separate,
            checkpoint=kept_ckpt(plan.run_dir, step),
            device=system.device,
            how=KEPT,
            floor=False,
            out_dir=out,
            grid_point=replace(plan.point, kept_step=step).as_dict(),
            fields={"evaluated_checkpoint": "kept", "steps": step, "evaluated_step": step},
        )
        done[step] = float(result["overall"]["mean"])
        log.info("%s: step %d scores %.2f dB on the test list", plan.subdir, step, done[step])
    return done
