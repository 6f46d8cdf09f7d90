"""Where the tests find the project: the repository (commands run from its root, as a user runs
them) and the configs (the tool's own rule, ``transfersep.run.config.conf_dir``), and one
``compose`` (lightning-hydra-template style) for the config fixtures."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import yaml

from transfersep.run.config import compose as tool_compose
from transfersep.run.config import conf_dir
from transfersep.study.grid import register_resolver

ROOT = Path(__file__).resolve().parents[2]
CONF = conf_dir()
register_resolver()  # the sweeps' ${grid_sweep:<stage>}, as the training command registers it


def compose(overrides: list[str], runs_dir: Path | None = None):
    """The config ``python train.py <overrides>`` would get (without the hydra node)."""
    extra = [f"paths.root_dir={ROOT}"] + ([f"paths.runs_dir={runs_dir}"] if runs_dir is not None else [])
    return tool_compose([*extra, *overrides])


def copy_conf(tmp_path: Path, edit_grid: Callable[[dict], None] | None = None) -> Path:
    """A copy of the repository's conf/ with its sweeps as real files (conf/sweeps links ../sweeps),
    for ``TRANSFERSEP_CONF``; ``edit_grid`` changes the parsed sweeps/grid.yaml of the copy."""
    conf = tmp_path / "conf"
    shutil.copytree(ROOT / "conf", conf, symlinks=False)
    if edit_grid is not None:
        path = conf / "sweeps" / "grid.yaml"
        grid = yaml.safe_load(path.read_text())
        edit_grid(grid)
        path.write_text(yaml.safe_dump(grid, sort_keys=False))
    return conf


# the folders the paper's runs have: a corpus pretrained by an objective (the names they had when
# the objective was part of the corpus's name); "Existing run folders keep their names"
FOLDER = {"dc": "", "mixit": "_mixit", "bootstrap": "_boot"}
NO_STEMS = ("mixit", "bootstrap")  # the objectives that read their corpus without stems


def grid_counts(conf: Path = CONF, **narrow: list[str]) -> dict[str, int]:
    """The study's sizes, read from ``<conf>/sweeps/grid.yaml`` as a file (independently of the
    tool's grid code): ``pretrain`` runs (corpus x objective x augment, less what the grid excludes
    and an objective without stems under incoherent mixing), ``downstream`` sets, fine-tune
    ``modes``, pretraining ``lengths``, the ``probes``, ``finetunes`` and ``baselines`` over all
    lengths, and ``total`` grid points. ``narrow`` replaces an axis's values (``objective=["dc"]``)."""
    grid = yaml.safe_load((conf / "sweeps" / "grid.yaml").read_text())
    axes = {**grid["axes"], **narrow}
    rules = grid.get("exclude") or []

    def out(point: dict) -> bool:
        if any(all(point.get(k) in vs for k, vs in r.items()) for r in rules):
            return True
        return point["augment"] == "incoherent" and point["objective"] in NO_STEMS

    pre = sum(
        not out({"pretrain": c, "objective": o, "augment": a})
        for c in axes["pretrain"]
        for o in axes.get("objective", ["dc"])
        for a in axes["augment"]
    )
    d, m, n = len(axes["downstream"]), len(axes["finetune"]), len(axes["pretrain_steps"])
    c = {"pretrain": pre, "downstream": d, "modes": m, "lengths": n}
    c.update(probes=n * pre * d, finetunes=n * pre * m * d, baselines=d)
    c["total"] = pre + c["probes"] + c["finetunes"] + d
    return c
