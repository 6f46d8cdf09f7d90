"""Every run of the study: ``python train.py <grid point overrides>`` (Hydra).

Follow a run here and in ``system.py``: plan (stage from the grid point) -> data -> model (loading
the pretrained checkpoint for a fine-tune) -> Lightning fit (resuming from ``last.ckpt``) ->
``final.ckpt`` -> SI-SDR evaluation -> ``status.json``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
import traceback
from pathlib import Path

import hydra
import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf

from transfersep import console, errors
from transfersep.errors import CompactJobFailed, JobFailed, MissingCheckpointError
from transfersep.eval.zeroshot_run import run_probe
from transfersep.plan import FINAL_CKPT, LAST_CKPT, Plan, done_file, make_plan
from transfersep.runlog import (
    AtomicCheckpointIO,
    build_loggers,
    evaluated_model,
    read_status,
    write_status,
)

log = logging.getLogger("transfersep")
CONF_DIR = os.environ.get("TRANSFERSEP_CONF", str(Path(__file__).resolve().parents[2] / "conf"))


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


def check_parent(plan: Plan, study: str) -> None:
    problem = errors.parent_problem(plan, study)
    if problem:
        raise MissingCheckpointError(problem)


def dry_run(cfg: DictConfig, plan: Plan) -> int:
    from transfersep.data import build_datamodule

    report: dict = {"plan": plan.as_dict(), "problems": []}
    try:
        check_parent(plan, str(cfg.study))
    except (MissingCheckpointError, errors.CheckpointError) as e:
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


def preflight(cfg: DictConfig, plan: Plan):
    """Everything a user can get wrong, checked before anything is written: the parent checkpoint
    and the data roots. Returns the datamodule (seeded first, as training expects)."""
    from transfersep.data import build_datamodule

    errors.check_config(cfg)
    check_parent(plan, str(cfg.study))
    if not cfg.rerun:
        errors.check_checkpoint(plan.run_dir / LAST_CKPT, "the checkpoint this run would resume from",
                                "delete it to train the run from its start (or add rerun=true)")
    L.seed_everything(int(cfg.seed), workers=True)
    if plan.stage == "zeroshot":  # the downstream set's test excerpts, as its fine-tunes see them
        return build_datamodule(cfg, "finetune", 1)
    return build_datamodule(cfg, plan.stage, plan.total_steps)


def fit(cfg: DictConfig, plan: Plan, dm) -> dict:
    from lightning.pytorch.callbacks import LearningRateMonitor

    from transfersep.resume import ResumableCheckpoint, cluster_plugins

    system = build_system(cfg, plan, dm.source_names)
    last = plan.run_dir / LAST_CKPT
    resume = last if last.exists() else None
    if plan.stage == "finetune" and resume is None:
        digest = load_pretrained(system, plan.parent_ckpt)
        if plan.parent is not None:
            plan.parent["weights_sha256"] = digest  # what was loaded is the truth
    if resume is not None:
        log.info("%s: resuming from %s", plan.subdir, resume)
    callbacks = [
        # last.ckpt at step boundaries, and on SIGTERM/SIGUSR1/SIGUSR2 (see resume.py)
        ResumableCheckpoint(last, int(cfg.checkpoint_every_n_steps)),
        LearningRateMonitor(logging_interval="step"),
    ]
    if plan.stage != "pretrain" and cfg.curve.every_n_steps:
        from transfersep.eval.curve import SISDRCurve

        callbacks.append(SISDRCurve(dm.test_set, plan.run_dir, every_n_steps=int(cfg.curve.every_n_steps),
                                    n_excerpts=int(cfg.curve.n_excerpts), batch_size=int(cfg.data.batch_size)))
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
        callbacks=callbacks, logger=loggers, plugins=[AtomicCheckpointIO(), *cluster_plugins()],
        enable_checkpointing=False,  # ResumableCheckpoint writes last.ckpt; no epoch-end extras
        default_root_dir=str(plan.run_dir),
    )
    trainer.fit(system, datamodule=dm, ckpt_path=str(resume) if resume else None)
    if trainer.global_step < plan.total_steps:  # interrupted (signal): leave status "running"
        raise InterruptedError(f"stopped at step {trainer.global_step} of {plan.total_steps}")
    trainer.save_checkpoint(plan.run_dir / FINAL_CKPT, weights_only=False)
    if trainer.is_global_zero:
        from transfersep.export import export_model

        export_model(system, plan.run_dir / "model.safetensors",
                     extra={"grid_point": plan.grid_point, "study": str(cfg.study), "seed": int(cfg.seed),
                            "run_dir": str(plan.run_dir), "checkpoint": str(plan.run_dir / FINAL_CKPT),
                            **({"parent": plan.parent} if plan.parent else {})})
    result: dict = {"steps": trainer.global_step}
    if plan.stage != "pretrain" and cfg.evaluate and trainer.is_global_zero:
        from transfersep.eval.evaluate import evaluate

        separate, close = console.evaluation_progress(system.separate, len(dm.test_set), int(cfg.data.batch_size),
                                                      show_progress)
        try:
            result = evaluate(separate, dm.test_set, dm.source_names, plan.run_dir, plan.grid_point,
                              batch_size=int(cfg.data.batch_size), device=system.device,
                              extra={"steps": trainer.global_step, "seed": int(cfg.seed), "study": str(cfg.study),
                                     "checkpoint": str(plan.run_dir / FINAL_CKPT), **evaluated_model(trainer),
                                     **({"parent": plan.parent} if plan.parent else {})})
        finally:
            close()
        metrics = {"test/sisdr": result["overall"]["mean"]}
        metrics.update({f"test/sisdr_{s}": v["mean"] for s, v in result["per_source"].items() if v["mean"] is not None})
        for lg in loggers:
            lg.log_metrics({k: v for k, v in metrics.items() if v is not None}, step=trainer.global_step)
            lg.save()
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


@contextlib.contextmanager
def _failed_status_on_user_error(plan: Plan):
    """In a multirun, a user error of one job is recorded in its status (``transfersep status`` lists
    it as failed); a single run leaves nothing behind."""
    try:
        yield
    except Exception as e:
        if errors.is_user_error(e) and _multirun():
            plan.run_dir.mkdir(parents=True, exist_ok=True)
            write_status(plan.run_dir, "failed", plan, error=errors.one_line(e))
        raise


def _run_owned(cfg: DictConfig, plan: Plan) -> dict | None:
    from transfersep.provenance import settle_parent

    # a fine-tune built on another parent than the one it would load now is set aside, not resumed;
    # a missing or damaged parent is said in one line first (provenance would fail on reading it)
    with _failed_status_on_user_error(plan):
        check_parent(plan, str(cfg.study))
    st = settle_parent(plan, read_status(plan.run_dir), wait_s=float(cfg.lock.stale_after_s))
    if st and st["state"] == "finished" and (plan.run_dir / done_file(plan.stage)).exists() and not cfg.rerun:
        log.info("%s already finished; skipping (rerun=true to train again)", plan.subdir)
        log.info("%s", console.run_summary(plan, st.get("result"), None))
        return {"skipped": True, **st}
    with _failed_status_on_user_error(plan):
        dm = preflight(cfg, plan)
    plan.run_dir.mkdir(parents=True, exist_ok=True)
    if cfg.rerun:  # train from scratch again: a stale last.ckpt would otherwise be resumed
        import shutil

        for stale in (plan.run_dir / LAST_CKPT, plan.run_dir / FINAL_CKPT):
            stale.unlink(missing_ok=True)
        shutil.rmtree(plan.run_dir / "csv", ignore_errors=True)
    write_status(plan.run_dir, "running", plan)
    started = time.monotonic()
    try:
        result = run_probe(cfg, plan, dm) if plan.stage == "zeroshot" else fit(cfg, plan, dm)
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
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    if rank_zero_only.rank == 0:  # trainer=ddp: every rank runs the job, one speaks
        log.info("%s", console.run_summary(plan, result, time.monotonic() - started,
                                           console.data_notes(dm.description)))
    return result


@hydra.main(config_path=CONF_DIR, config_name="train", version_base="1.3")
def hydra_main(cfg: DictConfig) -> None:
    from transfersep.resume import Preempted

    console.adopt_library_logging()
    try:
        run(cfg)
    except Preempted as e:
        log.warning("%s", e)
        e.hand_over()  # under submitit: requeue; else exit 128 + signal (a multirun stops too)
    except SystemExit as e:
        if cfg.dry_run and e.code and _multirun():
            raise CompactJobFailed(f"dry run found problems (exit code {e.code})", code=1) from None
        raise
    except Exception as e:
        if not errors.is_user_error(e):
            raise
        from hydra.core.hydra_config import HydraConfig

        multirun = _multirun()
        msg = errors.report(e, multirun)
        # a refused run leaves no directory behind (a multirun job keeps its failed status.json)
        errors.remove_unused_run_dir(Path(HydraConfig.get().runtime.output_dir), Path(cfg.paths.runs_dir))
        if multirun:
            # an Exception: Hydra marks this job failed and the rest of the grid runs on
            raise CompactJobFailed(msg) from None
        raise SystemExit(2) from None


def main() -> None:
    """``python train.py`` / ``transfersep train``: Hydra's command line plus ``--verbose``
    (tracebacks of user errors on the console, as with ``HYDRA_FULL_ERROR=1``). Hydra's own errors
    (an unknown config option or key) are printed as one line too. A multirun whose jobs failed on
    user errors exits 2 and ends with one note on what to do."""
    if "--verbose" in sys.argv[1:]:
        sys.argv.remove("--verbose")
        os.environ[errors.VERBOSE_ENV] = "1"
    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        os.environ[errors.VERBOSE_ENV] = "1"
    before = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra hands exceptions on unformatted; errors.py formats them
    try:
        hydra_main()
    except JobFailed as e:
        lines = errors.closing_lines()
        if not lines:  # the jobs ran elsewhere (SLURM): their lines are in their logs
            lines = [f"error: {e}", "a job of this multirun failed; `transfersep status` on the study folder "
                     "lists every failed job with its error and logs"]
        print("\n".join(lines), file=sys.stderr)
        raise SystemExit(2 if errors.FAILED_JOBS else e.code) from None
    except Exception as e:
        if errors.verbose() or not errors.is_config_error(e):
            raise
        print(f"error: {errors.config_error_line(e)}", file=sys.stderr)
        raise SystemExit(2) from None
    finally:
        if before is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = before


def _multirun() -> bool:
    """In a multirun a SystemExit would end the whole sweep (and, under submitit, leave a job
    without a result, which the launcher waits for forever where SLURM has no accounting)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


if __name__ == "__main__":
    main()
