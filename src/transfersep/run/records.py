"""A run's records: what its ``status.json`` says at each point of its life (the one module that
writes it; ``files.read_status`` / ``files.write_status`` move the bytes), whether a run is
finished, and what ``result.json`` says about the evaluated weights.

Light at import (no torch, no Lightning), so that ``transfersep status`` answers at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transfersep import files
from transfersep.files import TRAIN_LOG, read_status
from transfersep.run.jobs import job_info
from transfersep.run.plan import Plan, done_file


def write_status(run_dir: Path, state: str, plan: Plan, error: str | None = None, **extra: Any) -> None:
    """state: running | finished | failed | interrupted (Ctrl-C). Read by the status command and by relaunches; a
    fine-tune's ``parent`` record is in it (see ``provenance``)."""
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    if rank_zero_only.rank != 0:  # trainer=ddp: every rank runs the job; rank 0 keeps the books
        return
    files.write_status(
        run_dir,
        {
            "state": state,
            "grid_point": plan.grid_point,
            "stage": plan.stage,
            "log": str(Path(run_dir) / TRAIN_LOG),
            "error": error,
            "study": plan.study,
            **({"parent": plan.parent} if plan.parent else {}),  # what a fine-tune started from
            **job_info(),
            **extra,  # host, pid, SLURM ids, submitit logs: for `transfersep status`
        },
    )


def parent_loaded(plan: Plan, digest: str) -> None:
    """A fine-tune or probe has loaded its parent's weights: their digest is recorded in its status at
    once (what was loaded is the truth), so an interrupted run is judged by what it started from."""
    if plan.parent is not None:
        plan.parent["weights_sha256"] = digest
        write_status(plan.run_dir, "running", plan)


def write_finished(plan: Plan, result: Any, weights_sha256: str | None) -> None:
    """The run finished: its result, the digest of its own weights and of the weights it kept
    (``run.kept``), so that its fine-tunes can tell whether they are still built on it."""
    from transfersep.run.kept import read_kept

    books = read_kept(plan.run_dir)
    kept = {"kept": {str(k): books[k] for k in sorted(books)}} if books else {}
    write_status(plan.run_dir, "finished", plan, result=result, weights_sha256=weights_sha256, **kept)


def done_path(run_dir: str | Path, status: dict[str, Any]) -> Path:
    """The file that ends the stage of the run whose ``status.json`` is ``status``
    (``plan.done_file``: ``final.ckpt``, or ``result.json`` for the zero-shot probe)."""
    stage = status.get("stage") or (status.get("grid_point") or {}).get("stage") or ""
    return Path(run_dir) / done_file(str(stage))


def finished(run_dir: str | Path, status: dict[str, Any] | None = None) -> bool:
    """Whether the run in ``run_dir`` is complete: its status says "finished" and the file that
    ends its stage is there (``done_path``). ``status``: its ``status.json`` when already read."""
    st = read_status(run_dir) if status is None else status
    return bool(st) and st.get("state") == "finished" and done_path(run_dir, st).exists()


def evaluated_model(trainer: Any) -> dict[str, Any]:
    """For ``result.json``: which weights the evaluation scores (those of the last step, see the
    docs/decisions.md) and the validation losses that would have chosen otherwise."""
    out: dict[str, Any] = {"evaluated_checkpoint": "last", "evaluated_step": int(trainer.global_step)}
    last = trainer.callback_metrics.get("val/loss")
    out["last_val_loss"] = float(last) if last is not None else None
    scheds = [c.scheduler for c in trainer.lr_scheduler_configs]
    best = getattr(scheds[0], "best", None) if scheds else None
    out["best_val_loss"] = float(best) if best is not None and abs(float(best)) != float("inf") else None
    return out
