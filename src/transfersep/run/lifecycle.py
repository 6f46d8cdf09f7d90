"""One run's life, from its grid point to ``status.json``: plan -> lock -> parent check and provenance
-> data -> fit (``run.fit``) or probe (``run.probe``) -> records.

Follow a run here: ``run`` checks the config's types, plans it (the stage follows from the grid point) and owns its
directory; ``_run_owned`` refuses a relaunch with other settings than the run was trained with
(``identity``), skips a finished run, sets aside one built on a replaced parent, checks everything
a user can get wrong before writing anything, records the launch, then trains or probes and writes
the final status (Ctrl-C: "interrupted").
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
import traceback

import lightning as L
from omegaconf import DictConfig

from transfersep.files import FINAL_CKPT, LAST_CKPT, read_status
from transfersep.model.package import ModelLoadError
from transfersep.run import console, errors
from transfersep.run.config import in_multirun
from transfersep.run.dataid import check_data_unchanged, data_identity
from transfersep.run.errors import ConfigValueError, MissingCheckpointError
from transfersep.run.fit import fit
from transfersep.run.identity import check_unchanged, record_launch
from transfersep.run.parent import check_checkpoint, check_parent
from transfersep.run.plan import Plan, make_plan
from transfersep.run.probe import run_probe
from transfersep.run.records import finished, write_finished, write_status
from transfersep.run.resume import Interrupted
from transfersep.run.typed import check_config

log = logging.getLogger("transfersep")


class DryRunProblems(ConfigValueError):
    """What a dry run found (its report on stdout lists them); one line, exit 2, as any user error."""


def dry_run(cfg: DictConfig, plan: Plan) -> None:
    """Print the plan and what a launch would find (JSON); refuse in one line when it finds problems."""
    from transfersep.data import build_datamodule
    from transfersep.model import objectives

    report: dict = {"plan": plan.as_dict(), "problems": []}
    try:
        check_parent(plan, str(cfg.study))
    except (MissingCheckpointError, errors.CheckpointError, ModelLoadError) as e:
        report["problems"].append(str(e))
    try:
        check_unchanged(cfg, plan)
        check_data_unchanged(cfg, plan, data_identity(cfg, plan))
    except ConfigValueError as e:
        report["problems"].append(str(e))
    try:
        dm = build_datamodule(cfg, plan.stage, plan.total_steps, objectives.of_config(cfg))
        report["data"] = dm.description
        report["sources"] = dm.source_names
    except Exception as e:  # the loaders' errors name the root and what to do
        report["problems"].append(f"data: {e}")
    st = read_status(plan.run_dir)
    report["status"] = st["state"] if st else "missing"
    print(json.dumps(report, indent=2, default=str))
    if report["problems"]:
        n = len(report["problems"])
        raise DryRunProblems(f"dry run of {plan.subdir}: {n} problem(s): " + "; ".join(report["problems"]))


def preflight(cfg: DictConfig, plan: Plan):
    """Everything a user can get wrong, checked before anything is written (the parent was checked as
    the launch began): the checkpoint it would resume from and the data roots. Returns the
    datamodule (seeded first, as training expects)."""
    from transfersep.data import build_datamodule
    from transfersep.model import objectives

    if not cfg.rerun:
        check_checkpoint(
            plan.run_dir / LAST_CKPT,
            "the checkpoint this run would resume from",
            "delete it to train the run from its start (or add rerun=true)",
        )
    L.seed_everything(int(cfg.seed), workers=True)
    if plan.stage == "zeroshot":  # the downstream set's test excerpts, as its fine-tunes see them
        dm = build_datamodule(cfg, "finetune", 1)
    else:
        dm = build_datamodule(cfg, plan.stage, plan.total_steps, objectives.of_config(cfg))
    from transfersep.data.overlap import overlap_warning

    warning = overlap_warning(cfg, plan.stage)  # after the data checks: their errors come first
    if warning:
        log.warning("%s: %s", plan.subdir, warning)
    return dm


def run(cfg: DictConfig) -> dict | None:
    """One run of the grid. Returns its result (None for a dry run; ``skipped`` for a finished run
    or one that another live job owns)."""
    from transfersep.run.holder import RunLocked
    from transfersep.run.lock import own_run_dir

    check_config(cfg)  # typed values first: make_plan and the dry-run switch itself read them
    plan = make_plan(cfg)
    if cfg.dry_run:
        dry_run(cfg, plan)
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
        if errors.is_user_error(e) and in_multirun():
            plan.run_dir.mkdir(parents=True, exist_ok=True)
            write_status(plan.run_dir, "failed", plan, error=errors.one_line(e))
        raise


def _interrupted(plan: Plan, step: int | None, every: int) -> Interrupted:
    write_status(plan.run_dir, "interrupted", plan, interrupted_at_step=step)
    at = f" at step {step} of {plan.total_steps}" if step is not None else ""
    last = plan.run_dir / LAST_CKPT
    if (plan.run_dir / FINAL_CKPT).exists():  # stopped after training: during the evaluation or the records
        hint = (
            f"training had reached its budget ({plan.run_dir / FINAL_CKPT} is written); launch the same "
            "command again to finish the run without training again"
        )
    elif last.exists():
        hint = f"launch the same command again to resume from {last} (written every {every} steps)"
    else:
        hint = "launch the same command again to start it over (no checkpoint was written yet)"
    return Interrupted(step, f"{plan.subdir} interrupted (Ctrl-C){at}; {hint}")


def _run_owned(cfg: DictConfig, plan: Plan) -> dict | None:
    from transfersep.run.provenance import settle_parent

    # a fine-tune built on another parent than the one it would load now is set aside, not resumed;
    # a missing or damaged parent is said in one line first (provenance would fail on reading it)
    with _failed_status_on_user_error(plan):
        check_parent(plan, str(cfg.study))
    # other settings than the run was trained with: refused before anything changes (its status
    # stays what it was, finished runs included); rerun=true starts over
    check_unchanged(cfg, plan)
    data = data_identity(cfg, plan)  # other files than it was trained on: refused too, never skipped
    check_data_unchanged(cfg, plan, data)
    st = settle_parent(plan, read_status(plan.run_dir), wait_s=float(cfg.lock.stale_after_s))
    if st and finished(plan.run_dir, st) and not cfg.rerun:
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
    record_launch(cfg, plan, data)
    write_status(plan.run_dir, "running", plan)
    started = time.monotonic()
    try:
        result = run_probe(cfg, plan, dm) if plan.stage == "zeroshot" else fit(cfg, plan, dm)
    except KeyboardInterrupt as e:  # Ctrl-C: said in one line, recorded; the next launch resumes
        raise _interrupted(plan, getattr(e, "step", None), int(cfg.checkpoint_every_n_steps)) from None
    except BaseException as e:
        # signals and requeue exits leave "running": the next launch resumes
        if isinstance(e, Exception) and not isinstance(e, InterruptedError):
            write_status(plan.run_dir, "failed", plan, error="".join(traceback.format_exception_only(e)).strip())
        raise
    finally:
        if "wandb" in sys.modules:
            import wandb

            wandb.finish()  # multirun jobs in one process must never merge into one W&B run
    from transfersep.run.provenance import own_digest

    write_finished(plan, result, own_digest(plan.run_dir))
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    if rank_zero_only.rank == 0:  # trainer=ddp: every rank runs the job, one speaks
        log.info(
            "%s", console.run_summary(plan, result, time.monotonic() - started, console.data_notes(dm.description))
        )
    return result
