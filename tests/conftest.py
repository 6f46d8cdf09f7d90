"""Shared fixtures: composed configs (lightning-hydra-template style), offline W&B, tiny runs."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import torch

from project import compose

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("WANDB_DISABLE_CODE", "true")
torch.set_num_threads(1)


@pytest.fixture
def tiny_cfg(tmp_path):
    def make(*overrides: str):
        return compose(["experiment=tiny", "data.generated=true", "logger=csv", *overrides], tmp_path / "runs")

    return make


def pytest_collection_modifyitems(config, items) -> None:
    # under pytest-xdist (`make test` runs two workers) the jobs of the one-node test cluster would
    # queue behind each other's and time out: every slurm test runs in the same worker, one at a time
    for item in items:
        if item.get_closest_marker("slurm"):
            item.add_marker(pytest.mark.xdist_group("slurm"))


SLURM_CLUSTER_NAME = "transfersep"  # ClusterName written by scripts/slurm_cluster.sh


@pytest.fixture(scope="module")
def partition() -> str:
    """The local test cluster's default partition; skips unless that cluster answers
    (never submits to a real cluster unless TRANSFERSEP_SLURM_ANY_CLUSTER=1)."""

    def run(cmd: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30)

    if shutil.which("sinfo") is None:
        pytest.skip("no `sinfo` on PATH: start the test cluster with `sudo scripts/slurm_cluster.sh up`")
    try:
        info = run(["sinfo", "-h", "-o", "%P %T"])
    except subprocess.TimeoutExpired:
        pytest.skip("`sinfo` hangs: is slurmctld up? (`sudo scripts/slurm_cluster.sh status`)")
    if info.returncode != 0 or not info.stdout.strip():
        pytest.skip(
            f"`sinfo` gets no answer ({info.stderr.strip()}): "
            "start the test cluster with `sudo scripts/slurm_cluster.sh up`"
        )
    config = run(["scontrol", "show", "config"]).stdout
    name = next((ln.split("=", 1)[1].strip() for ln in config.splitlines() if ln.startswith("ClusterName")), "")
    if name != SLURM_CLUSTER_NAME and os.environ.get("TRANSFERSEP_SLURM_ANY_CLUSTER") != "1":
        pytest.skip(
            f"cluster '{name}' is not the local test cluster '{SLURM_CLUSTER_NAME}'; "
            "set TRANSFERSEP_SLURM_ANY_CLUSTER=1 to submit test jobs to it anyway"
        )
    parts = [ln.split()[0] for ln in info.stdout.splitlines()]
    default = [p.rstrip("*") for p in parts if p.endswith("*")]
    return default[0] if default else parts[0]
