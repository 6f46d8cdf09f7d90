"""A run's loggers: CSV always (resumable), W&B when enabled (offline when there is no login), with
a W&B run id that a resumed or requeued job continues."""

from __future__ import annotations

import hashlib
import os
from typing import Any

from omegaconf import DictConfig, OmegaConf

from transfersep.run.plan import Plan


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
    from transfersep.run.resume import ResumableCSVLogger

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
        loggers.append(
            WandbLogger(
                project=wb.project,
                entity=wb.entity,
                name=f"{cfg.study}/{plan.subdir}",
                group=f"{cfg.study}/{gp['pretrain']}-{gp['augment']}",
                job_type=plan.stage,
                tags=[f"{k}={v}" for k, v in gp.items()] + [f"study={cfg.study}"],
                id=wandb_run_id(cfg, plan),
                resume="allow",
                save_dir=str(plan.run_dir),
                mode=wandb_mode(wb.mode),
                config=config,
            )
        )
    return loggers
