"""Shared fixtures: composed configs (lightning-hydra-template style), offline W&B, tiny runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("WANDB_DISABLE_CODE", "true")
torch.set_num_threads(1)


def compose(overrides: list[str], runs_dir: Path | None = None):
    """The config ``python train.py <overrides>`` would get (hydra node included)."""
    from hydra import compose as hcompose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    import transfersep.plan  # noqa: F401  (registers resolvers)

    GlobalHydra.instance().clear()
    extra = [f"paths.root_dir={ROOT}"]
    if runs_dir is not None:
        extra.append(f"paths.runs_dir={runs_dir}")
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return hcompose(config_name="train", overrides=extra + overrides, return_hydra_config=False)


@pytest.fixture
def tiny_cfg(tmp_path):
    def make(*overrides: str):
        return compose(["experiment=tiny", "data.generated=true", "logger=csv", *overrides], tmp_path / "runs")

    return make
