"""Run bookkeeping: status.json, atomic checkpoints, and the loggers (CSV always, W&B optional)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from omegaconf import DictConfig, OmegaConf

from transfersep.fsutil import atomic_write, atomic_write_json
from transfersep.jobs import job_info
from transfersep.plan import Plan

STATUS = "status.json"


def write_status(run_dir: Path, state: str, plan: Plan, error: str | None = None, **extra: Any) -> None:
    """state: running | finished | failed. Read by the status command and by relaunches; a
    fine-tune's ``parent`` record is in it (see ``provenance``)."""
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    if rank_zero_only.rank != 0:  # trainer=ddp: every rank runs the job; rank 0 keeps the books
        return
    atomic_write_json(Path(run_dir) / STATUS, {
        "state": state, "grid_point": plan.grid_point, "stage": plan.stage,
        "log": str(Path(run_dir) / "train.log"), "error": error, "study": plan.study,
        **({"parent": plan.parent} if plan.parent else {}),  # what a fine-tune started from
        **job_info(), **extra,  # host, pid, SLURM ids, submitit logs: for `transfersep.status`
    })


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


def wandb_mode(cfg_mode: str | None = None) -> str:
    """Explicit config > WANDB_MODE > online when logged in (API key or netrc) > offline."""
    import netrc
    from urllib.parse import urlparse

    if cfg_mode:
        return str(cfg_mode)
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    try:
        path = os.environ.get("NETRC") or os.path.join(os.path.expanduser("~"), ".netrc")
        if os.path.exists(path) and netrc.netrc(path).authenticators(host):
            return "online"
    except (OSError, netrc.NetrcParseError):
        pass
    return "offline"


def wandb_run_id(cfg: DictConfig, plan: Plan) -> str:
    """Deterministic id from study + grid point: a resumed or requeued job continues its W&B run."""
    key = f"{cfg.logger.wandb.project}/{cfg.study}/{plan.subdir}"
    if plan.parent and plan.parent.get("weights_sha256"):
        # a fine-tune retrained on a redone parent is another W&B run, never appended to the old one
        key += f"/{plan.parent['weights_sha256']}"
    return hashlib.sha1(key.encode()).hexdigest()[:16]


def own_wandb_service() -> None:
    """Forget a W&B service inherited from a parent process (``WANDB_SERVICE``).

    wandb puts its service's address in the environment, so a train.py started by a Python process
    that used W&B (a notebook, a driver script, pytest) streams through the parent's service. When
    such a run is killed, its stream stays open there, and the relaunch fails with "run ID ... is in
    use". A run therefore always starts its own service, which dies with it.
    """
    token = os.environ.get("WANDB_SERVICE", "")
    parts = token.split("-")
    if token and not (len(parts) > 2 and parts[1] == str(os.getpid())):
        del os.environ["WANDB_SERVICE"]


def build_loggers(cfg: DictConfig, plan: Plan, data_description: dict[str, Any]) -> list:
    from transfersep.resume import ResumableCSVLogger

    # a resumed run continues csv/metrics.csv (Lightning's CSVLogger would delete it)
    loggers: list = [ResumableCSVLogger(save_dir=str(plan.run_dir), name="", version="csv")]
    wb = cfg.logger.wandb
    if wb.enabled:
        from lightning.pytorch.loggers import WandbLogger

        own_wandb_service()
        gp = plan.grid_point
        config = OmegaConf.to_container(cfg, resolve=True)
        config["plan"] = plan.as_dict()
        config["parent"] = plan.parent
        config["data_resolved"] = data_description
        loggers.append(WandbLogger(
            project=wb.project, entity=wb.entity, name=f"{cfg.study}/{plan.subdir}",
            group=f"{cfg.study}/{gp['pretrain']}-{gp['augment']}",
            job_type=plan.stage, tags=[f"{k}={v}" for k, v in gp.items()] + [f"study={cfg.study}"],
            id=wandb_run_id(cfg, plan), resume="allow", save_dir=str(plan.run_dir),
            mode=wandb_mode(wb.mode), config=config,
        ))
    return loggers


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
