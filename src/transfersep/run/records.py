"""A run's records: ``status.json`` (the one reader and writer), atomic checkpoints, and what
``result.json`` says about the evaluated weights."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from transfersep.atomic import atomic_write, atomic_write_json
from transfersep.run.jobs import job_info
from transfersep.run.plan import Plan

STATUS = "status.json"


def write_status(run_dir: Path, state: str, plan: Plan, error: str | None = None, **extra: Any) -> None:
    """state: running | finished | failed | interrupted (Ctrl-C). Read by the status command and by relaunches; a
    fine-tune's ``parent`` record is in it (see ``provenance``)."""
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    if rank_zero_only.rank != 0:  # trainer=ddp: every rank runs the job; rank 0 keeps the books
        return
    atomic_write_json(
        Path(run_dir) / STATUS,
        {
            "state": state,
            "grid_point": plan.grid_point,
            "stage": plan.stage,
            "log": str(Path(run_dir) / "train.log"),
            "error": error,
            "study": plan.study,
            **({"parent": plan.parent} if plan.parent else {}),  # what a fine-tune started from
            **job_info(),
            **extra,  # host, pid, SLURM ids, submitit logs: for `transfersep status`
        },
    )


def read_status(run_dir: Path) -> dict[str, Any] | None:
    p = Path(run_dir) / STATUS
    try:
        return json.loads(p.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's torch checkpoint IO, but written to a temp file and renamed into place, so a job
    killed while saving leaves the previous ``last.ckpt`` intact."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        import torch

        atomic_write(path, lambda tmp: torch.save(checkpoint, tmp))


def evaluated_model(trainer: Any) -> dict[str, Any]:
    """For ``result.json``: which weights the evaluation scores (those of the last step, see the
    README's Decisions) and the validation losses that would have chosen otherwise."""
    out: dict[str, Any] = {"evaluated_checkpoint": "last", "evaluated_step": int(trainer.global_step)}
    last = trainer.callback_metrics.get("val/loss")
    out["last_val_loss"] = float(last) if last is not None else None
    scheds = [c.scheduler for c in trainer.lr_scheduler_configs]
    best = getattr(scheds[0], "best", None) if scheds else None
    out["best_val_loss"] = float(best) if best is not None and abs(float(best)) != float("inf") else None
    return out
