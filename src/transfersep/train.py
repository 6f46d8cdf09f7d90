"""Every run of the study: ``python train.py <grid point overrides>`` (Hydra).

Follow a run here and in ``system.py``: plan (stage from the grid point) -> data -> model (loading
the pretrained checkpoint for a fine-tune) -> Lightning fit (resuming from ``last.ckpt``) ->
``final.ckpt`` -> SI-SDR evaluation -> ``status.json``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from pathlib import Path

import hydra
import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf

from transfersep.plan import FINAL_CKPT, LAST_CKPT, Plan, PlanError, done_file, make_plan
from transfersep.runlog import AtomicCheckpointIO, build_loggers, evaluated_model, read_status, write_status

log = logging.getLogger("transfersep")
CONF_DIR = os.environ.get("TRANSFERSEP_CONF", str(Path(__file__).resolve().parents[2] / "conf"))


class MissingCheckpointError(FileNotFoundError):
    pass


def build_system(cfg: DictConfig, plan: Plan, source_names: list[str]):
    from transfersep.system import SeparationSystem

    return SeparationSystem(
        model=OmegaConf.to_container(cfg.model, resolve=True),
        phase=plan.phase, source_names=source_names,
        alpha=cfg.loss.alpha, dc_weights=cfg.loss.dc_weights, lr=cfg.optim.lr,
        autoclip_percentile=cfg.optim.autoclip_percentile,
        plateau_patience_steps=cfg.optim.plateau_patience_steps, plateau_factor=cfg.optim.plateau_factor,
        val_every_n_steps=cfg.val_every_n_steps,
    )


def load_pretrained(system, ckpt: Path) -> str:
    """Backbone and embedding head from a pretraining checkpoint or model package; a fresh mask head.
    Returns the digest of the loaded weights (``export.weights_digest``)."""
    from transfersep.export import weights_digest

    if ckpt.suffix == ".safetensors":
        from transfersep.export import load_model

        model_state = load_model(ckpt, device="cpu").net.state_dict()
    else:
        state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
        model_state = {k[len("model."):]: v for k, v in state.items() if k.startswith("model.")}
    try:
        system.model.load_flexible(model_state, keep_mask_head=False)
    except ValueError as e:
        raise ValueError(f"{ckpt}: {e}") from e
    system.apply_phase()
    return weights_digest(model_state)


def check_parent(plan: Plan) -> None:
    if plan.parent_ckpt is not None and not plan.parent_ckpt.exists():
        raise MissingCheckpointError(
            f"fine-tuning {plan.subdir} needs the pretrained checkpoint {plan.parent_ckpt}, which does not "
            f"exist. Produce it first with:\n    {plan.parent_command}"
        )


def dry_run(cfg: DictConfig, plan: Plan) -> int:
    from transfersep.data import build_datamodule

    report: dict = {"plan": plan.as_dict(), "problems": []}
    try:
        check_parent(plan)
    except MissingCheckpointError as e:
        report["problems"].append(str(e))
    try:
        dm = build_datamodule(cfg, plan.stage, plan.total_steps)
        report["data"] = dm.description
        report["sources"] = dm.source_names
    except Exception as e:  # the loaders' errors name the root and what to do
        report["problems"].append(f"data: {e}")
    st = read_status(plan.run_dir)
    report["status"] = st["state"] if st else "missing"
    print(json.dumps(report, indent=2, default=str))
    return 1 if report["problems"] else 0


def fit(cfg: DictConfig, plan: Plan) -> dict:
    from lightning.pytorch.callbacks import LearningRateMonitor

    from transfersep.data import build_datamodule
    from transfersep.resume import ResumableCheckpoint, cluster_plugins

    check_parent(plan)
    L.seed_everything(int(cfg.seed), workers=True)
    dm = build_datamodule(cfg, plan.stage, plan.total_steps)
    system = build_system(cfg, plan, dm.source_names)
    last = plan.run_dir / LAST_CKPT
    resume = last if last.exists() else None
    if plan.stage == "finetune" and resume is None:
        digest = load_pretrained(system, plan.parent_ckpt)
        if plan.parent is not None:
            plan.parent["weights_sha256"] = digest  # what was loaded is the truth
    callbacks = [
        # last.ckpt at step boundaries, and on SIGTERM/SIGUSR1/SIGUSR2 (see resume.py)
        ResumableCheckpoint(last, int(cfg.checkpoint_every_n_steps)),
        LearningRateMonitor(logging_interval="step"),
    ]
    if plan.stage != "pretrain" and cfg.curve.every_n_steps:
        from transfersep.eval.curve import SISDRCurve

        callbacks.append(SISDRCurve(dm.test_set, plan.run_dir, every_n_steps=int(cfg.curve.every_n_steps),
                                    n_excerpts=int(cfg.curve.n_excerpts), batch_size=int(cfg.data.batch_size)))
    loggers = build_loggers(cfg, plan, dm.description)
    trainer = L.Trainer(
        **OmegaConf.to_container(cfg.trainer, resolve=True),
        max_steps=plan.total_steps,
        val_check_interval=min(int(cfg.val_every_n_steps), plan.total_steps),
        check_val_every_n_epoch=None,
        callbacks=callbacks, logger=loggers, plugins=[AtomicCheckpointIO(), *cluster_plugins()],
        enable_checkpointing=False,  # ResumableCheckpoint writes last.ckpt; no epoch-end extras
        default_root_dir=str(plan.run_dir),
    )
    trainer.fit(system, datamodule=dm, ckpt_path=str(resume) if resume else None)
    if trainer.global_step < plan.total_steps:  # interrupted (signal): leave status "running"
        raise InterruptedError(f"stopped at step {trainer.global_step} of {plan.total_steps}")
    trainer.save_checkpoint(plan.run_dir / FINAL_CKPT)
    if trainer.is_global_zero:
        from transfersep.export import export_model

        export_model(system, plan.run_dir / "model.safetensors",
                     extra={"grid_point": plan.grid_point, "study": str(cfg.study), "seed": int(cfg.seed),
                            "run_dir": str(plan.run_dir), "checkpoint": str(plan.run_dir / FINAL_CKPT),
                            **({"parent": plan.parent} if plan.parent else {})})
    result: dict = {"steps": trainer.global_step}
    if plan.stage != "pretrain" and cfg.evaluate and trainer.is_global_zero:
        from transfersep.eval.evaluate import evaluate

        result = evaluate(system.separate, dm.test_set, dm.source_names, plan.run_dir, plan.grid_point,
                          batch_size=int(cfg.data.batch_size), device=system.device,
                          extra={"steps": trainer.global_step, "seed": int(cfg.seed), "study": str(cfg.study),
                                 "checkpoint": str(plan.run_dir / FINAL_CKPT),
                                 **evaluated_model(trainer), **({"parent": plan.parent} if plan.parent else {})})
        metrics = {"test/sisdr": result["overall"]["mean"]}
        metrics.update({f"test/sisdr_{s}": v["mean"] for s, v in result["per_source"].items() if v["mean"] is not None})
        for lg in loggers:
            lg.log_metrics({k: v for k, v in metrics.items() if v is not None}, step=trainer.global_step)
            lg.save()
    return result


def probe(cfg: DictConfig, plan: Plan) -> dict:
    """The zero-shot probe (``finetune=zeroshot``): score the pretrained model's DC clusters on the
    downstream test excerpts; nothing trains (``transfersep.eval.zeroshot``)."""
    from dataclasses import replace

    from transfersep.data import build_datamodule
    import numpy as np

    from transfersep.eval.evaluate import evaluate, score_excerpts
    from transfersep.eval.sisdr import excerpt_means
    from transfersep.eval.zeroshot import ClusterSeparator, match_to_references

    check_parent(plan)
    L.seed_everything(int(cfg.seed), workers=True)
    dm = build_datamodule(cfg, "finetune", 1)
    system = build_system(cfg, replace(plan, phase="mask"), dm.source_names)
    digest = load_pretrained(system, plan.parent_ckpt)
    if plan.parent is not None:
        plan.parent["weights_sha256"] = digest  # what was loaded is the truth
    sep = ClusterSeparator(system.model, system.stft, k=len(dm.source_names), seed=int(cfg.seed),
                           floor_db=float(cfg.finetune.floor_db), max_fit_bins=int(cfg.finetune.max_fit_bins))
    # the floor any separator should clear: the mixture itself as the estimate of every source
    n = len(dm.source_names)
    floor, silent, _ = score_excerpts(lambda m: m[:, None].expand(-1, n, -1).clone(), dm.test_set, n,
                                      batch_size=int(cfg.data.batch_size))
    extra = {"method": "dc-kmeans", "seed": int(cfg.seed), "study": str(cfg.study),
             "checkpoint": str(plan.parent_ckpt), "floor_db": sep.floor_db, "max_fit_bins": sep.max_fit_bins,
             "mixture_as_estimate_sisdr": float(np.nanmean(excerpt_means(floor, silent))),
             **({"parent": plan.parent} if plan.parent else {})}
    result = evaluate(sep, dm.test_set, dm.source_names, plan.run_dir, plan.grid_point,
                      batch_size=int(cfg.data.batch_size), extra=extra, align=match_to_references)
    log.info("%s: zero-shot SI-SDR %.2f dB over %d excerpts (the mixture as the estimate: %.2f dB)", plan.subdir,
             result["overall"]["mean"], result["n_excerpts"], extra["mixture_as_estimate_sisdr"])
    return result


def run(cfg: DictConfig) -> dict | None:
    """One run of the grid. Returns its result (None for a dry run; ``skipped`` for a finished run
    or one that another live job owns)."""
    from transfersep.lock import RunLocked, own_run_dir

    plan = make_plan(cfg)
    if cfg.dry_run:
        code = dry_run(cfg, plan)
        if code:
            raise SystemExit(code)
        return None
    try:
        with own_run_dir(plan.run_dir, float(cfg.lock.heartbeat_s), float(cfg.lock.stale_after_s)):
            return _run_owned(cfg, plan)
    except RunLocked as e:  # another live job trains it: skipped like a finished run
        log.warning("%s", e)
        return {"skipped": True, "held_by": e.holder}


def _run_owned(cfg: DictConfig, plan: Plan) -> dict | None:
    from transfersep.provenance import settle_parent

    # a fine-tune built on another parent than the one it would load now is set aside, not resumed
    st = settle_parent(plan, read_status(plan.run_dir), wait_s=float(cfg.lock.stale_after_s))
    if st and st["state"] == "finished" and (plan.run_dir / done_file(plan.stage)).exists() and not cfg.rerun:
        log.info("%s already finished; skipping (rerun=true to train again)", plan.subdir)
        return {"skipped": True, **st}
    plan.run_dir.mkdir(parents=True, exist_ok=True)
    if cfg.rerun:  # train from scratch again: a stale last.ckpt would otherwise be resumed
        import shutil

        for stale in (plan.run_dir / LAST_CKPT, plan.run_dir / FINAL_CKPT):
            stale.unlink(missing_ok=True)
        shutil.rmtree(plan.run_dir / "csv", ignore_errors=True)
    write_status(plan.run_dir, "running", plan)
    try:
        result = probe(cfg, plan) if plan.stage == "zeroshot" else fit(cfg, plan)
    except BaseException as e:
        # signals, requeue exits and Ctrl-C leave "running": the next launch resumes
        if isinstance(e, Exception) and not isinstance(e, InterruptedError):
            write_status(plan.run_dir, "failed", plan, error="".join(traceback.format_exception_only(e)).strip())
        raise
    finally:
        if "wandb" in sys.modules:
            import wandb

            wandb.finish()  # multirun jobs in one process must never merge into one W&B run
    from transfersep.provenance import own_digest

    # a parent's own digest, so that its fine-tunes can tell whether they are still built on it
    write_status(plan.run_dir, "finished", plan, result=result, weights_sha256=own_digest(plan.run_dir))
    return result


@hydra.main(config_path=CONF_DIR, config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from transfersep.resume import Preempted

    try:
        run(cfg)
    except Preempted as e:
        log.warning("%s", e)
        e.hand_over()  # under submitit: requeue; else exit 128 + signal (a multirun stops too)
    except (PlanError, MissingCheckpointError) as e:
        log.error("%s", e)
        if _multirun():
            raise  # an Exception: Hydra marks this job failed and the rest of the grid runs on
        raise SystemExit(2) from None
    except SystemExit as e:
        if cfg.dry_run and e.code and _multirun():
            raise RuntimeError(f"dry run found problems (exit code {e.code})") from None
        raise


def _multirun() -> bool:
    """In a multirun a SystemExit would end the whole sweep (and, under submitit, leave a job
    without a result, which the launcher waits for forever where SLURM has no accounting)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


if __name__ == "__main__":
    main()
