"""A training run's fit: Lightning trains from the initial model (resuming from ``last.ckpt``), then
``final.ckpt``, the model package and, for fine-tunes and baselines, the SI-SDR evaluation."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
from omegaconf import DictConfig, OmegaConf

from transfersep.files import FINAL_CKPT, LAST_CKPT, PACKAGE
from transfersep.run import console
from transfersep.run.initial import build_system, load_pretrained
from transfersep.run.loggers import build_loggers
from transfersep.run.plan import Plan
from transfersep.run.records import evaluated_model, parent_loaded

log = logging.getLogger("transfersep")


def fit(cfg: DictConfig, plan: Plan, dm) -> dict:
    from lightning.pytorch.callbacks import LearningRateMonitor

    from transfersep.run.resume import AtomicCheckpointIO, Interrupted, ResumableCheckpoint, cluster_plugins

    system = build_system(cfg, plan, dm.source_names)
    last = plan.run_dir / LAST_CKPT
    resume = resume_point(plan)
    if plan.stage == "finetune" and resume is None:
        parent_loaded(plan, load_pretrained(system, plan.parent_ckpt))
    if resume is not None:
        log.info("%s: resuming from %s", plan.subdir, resume)
        if (done := checkpoint_step(resume)) is not None and done >= plan.total_steps:
            log.info("%s: training reached its budget (%d steps) before; only the rest is done", plan.subdir, done)
    callbacks = [
        # last.ckpt at step boundaries, and on SIGTERM/SIGUSR1/SIGUSR2 (see resume.py)
        ResumableCheckpoint(last, int(cfg.checkpoint_every_n_steps)),
        LearningRateMonitor(logging_interval="step"),
    ]
    if plan.keep_steps:  # the pretraining-length axis: weights at listed iterations (run.kept)
        from transfersep.run.keeping import KeepCheckpoints

        callbacks.append(KeepCheckpoints(plan.run_dir, plan.keep_steps))
    if plan.stage != "pretrain" and cfg.curve.every_n_steps:
        from transfersep.evaluation.curve import SISDRCurve

        callbacks.append(
            SISDRCurve(
                dm.test_set,
                plan.run_dir,
                every_n_steps=int(cfg.curve.every_n_steps),
                n_excerpts=int(cfg.curve.n_excerpts),
                batch_size=int(cfg.data.batch_size),
            )
        )
    trainer_kw = OmegaConf.to_container(cfg.trainer, resolve=True)
    show_progress = bool(trainer_kw.get("enable_progress_bar", True))
    trainer_kw["enable_progress_bar"], progress_callbacks = console.training_progress(show_progress)
    callbacks += progress_callbacks
    loggers = build_loggers(cfg, plan, dm.description)
    console.quiet_wandb(loggers)
    trainer = L.Trainer(
        **trainer_kw,
        max_steps=plan.total_steps,
        val_check_interval=min(int(cfg.val_every_n_steps), plan.total_steps),
        check_val_every_n_epoch=None,
        callbacks=callbacks,
        logger=loggers,
        plugins=[AtomicCheckpointIO(), *cluster_plugins()],
        enable_checkpointing=False,  # ResumableCheckpoint writes last.ckpt; no epoch-end extras
        default_root_dir=str(plan.run_dir),
    )
    try:
        trainer.fit(system, datamodule=dm, ckpt_path=str(resume) if resume else None)
    except SystemExit:
        # Lightning turns Ctrl-C into a bare exit(1) after its teardown; it is an interrupt
        if trainer.interrupted:
            raise Interrupted(trainer.global_step) from None
        raise
    if trainer.global_step < plan.total_steps:  # interrupted (signal): leave status "running"
        raise InterruptedError(f"stopped at step {trainer.global_step} of {plan.total_steps}")
    trainer.save_checkpoint(plan.run_dir / FINAL_CKPT, weights_only=False)
    if trainer.is_global_zero:
        from transfersep.model.export import export_model

        export_model(
            system,
            plan.run_dir / PACKAGE,
            extra={
                "grid_point": plan.grid_point,
                "study": str(cfg.study),
                "seed": int(cfg.seed),
                "run_dir": str(plan.run_dir),
                "checkpoint": str(plan.run_dir / FINAL_CKPT),
                **({"parent": plan.parent} if plan.parent else {}),
            },
        )
    result: dict = {"steps": trainer.global_step}
    if plan.stage != "pretrain" and cfg.evaluate and trainer.is_global_zero:
        from transfersep.run.scoring import score_and_record

        result = score_and_record(
            cfg,
            plan,
            dm,
            system.separate,
            checkpoint=plan.run_dir / FINAL_CKPT,
            device=system.device,
            progress=show_progress,
            fields={"steps": trainer.global_step, **evaluated_model(trainer)},
        )
        metrics = {"test/sisdr": result["overall"]["mean"]}
        metrics.update({f"test/sisdr_{s}": v["mean"] for s, v in result["per_source"].items() if v["mean"] is not None})
        for lg in loggers:
            lg.log_metrics({k: v for k, v in metrics.items() if v is not None}, step=trainer.global_step)
            lg.save()
        if plan.stage == "baseline" and plan.keep_steps:  # equal-iteration comparisons (run.kept)
            from transfersep.run.keeping import evaluate_kept

            evaluate_kept(cfg, system, dm, plan)
    return result


def checkpoint_step(path: Path) -> int | None:
    """The optimiser steps a Lightning checkpoint holds (read mapped: the tensors are not loaded)."""
    import torch

    try:
        return int(torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)["global_step"])
    except Exception:  # unreadable: Lightning's own restore says why
        return None


def resume_point(plan: Plan) -> Path | None:
    """The checkpoint a relaunch continues from: ``last.ckpt``, or ``final.ckpt`` where that is
    further on (a run stopped during its evaluation before ``last.ckpt`` was also written at the
    final step); None to train from the start."""
    found = [p for p in (plan.run_dir / LAST_CKPT, plan.run_dir / FINAL_CKPT) if p.is_file()]
    if len(found) < 2:
        return found[0] if found else None
    steps = [checkpoint_step(p) for p in found]
    return found[1] if (steps[1] or -1) > (steps[0] or -1) else found[0]
