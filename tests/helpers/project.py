"""Where the tests find the project: the repository (commands run from its root, as a user runs
them) and the configs (the tool's own rule, ``transfersep.run.config.conf_dir``), and one
``compose`` (lightning-hydra-template style) for the config fixtures."""

from __future__ import annotations

from pathlib import Path

from transfersep.run.config import compose as tool_compose
from transfersep.run.config import conf_dir

ROOT = Path(__file__).resolve().parents[2]
CONF = conf_dir()


def compose(overrides: list[str], runs_dir: Path | None = None):
    """The config ``python train.py <overrides>`` would get (without the hydra node)."""
    extra = [f"paths.root_dir={ROOT}"] + ([f"paths.runs_dir={runs_dir}"] if runs_dir is not None else [])
    return tool_compose([*extra, *overrides])
