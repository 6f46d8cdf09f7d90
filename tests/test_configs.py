"""Every config under conf/ and sweeps/ composes and resolves (compose API, as Hydra would build
it for `python train.py ...`), and the sweeps expand to the study's grid of the paper.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from project import CONF
from transfersep.run.config import compose as tool_compose
from transfersep.run.plan import make_plan
from transfersep.run.point import PlanError
from transfersep.study.grid import expand, grid_points

# the study's grid, read from sweeps/grid.yaml as a file and expanded here by the documented folder
# rule, independently of plan.py and study/grid.py
GRID = yaml.safe_load((CONF / "sweeps" / "grid.yaml").read_text())
AXES = GRID["axes"]
# the folders the paper's runs have: a corpus pretrained by an objective (the names they had when
# the objective was part of the corpus's name)
FOLDER = {"dc": "", "mixit": "_mixit", "bootstrap": "_boot"}
LENGTHS = {"quarter": "-quarter", "half": "-half", "end": ""}  # a kept checkpoint's suffix; the end keeps the names


def ruled_out(point: dict) -> bool:
    """A point the grid's exclude list names, or an objective without stems under incoherent mixing."""
    if any(all(point.get(k) in vs for k, vs in rule.items()) for rule in GRID.get("exclude") or []):
        return True
    return point["augment"] == "incoherent" and point["objective"] in ("mixit", "bootstrap")


PAIRS = [
    (f"{c}{FOLDER[o]}", a)
    for o in AXES["objective"]
    for c in AXES["pretrain"]
    for a in AXES["augment"]
    if not ruled_out({"pretrain": c, "objective": o, "augment": a})
]
MODES, DOWNSTREAM, STEPS = AXES["finetune"], AXES["downstream"], [LENGTHS[v] for v in AXES["pretrain_steps"]]
EXPECTED = {
    "pretrain": {f"pretrain/{p}-{a}" for p, a in PAIRS},
    "finetune": {
        f"finetune/{p}-{a}-{f}-{d}{at}" for (p, a), f, d, at in itertools.product(PAIRS, MODES, DOWNSTREAM, STEPS)
    },
    "baseline": {f"baseline/{d}" for d in DOWNSTREAM},
    "zeroshot": {f"zeroshot/{p}-{a}-{d}{at}" for (p, a), d, at in itertools.product(PAIRS, DOWNSTREAM, STEPS)},
}
SWEPT = {  # the product each stage's multirun sweeps (before the excluded points leave it)
    "pretrain": ["pretrain", "objective", "augment"],
    "zeroshot": ["pretrain", "objective", "augment", "downstream", "pretrain_steps"],
    "finetune": ["pretrain", "objective", "augment", "finetune", "downstream", "pretrain_steps"],
    "baseline": ["downstream"],
}


def full_config(overrides: list[str], tmp_path: Path):
    """The config (hydra node included, interpolations resolvable) of `train.py <overrides>`."""
    return tool_compose([f"paths.runs_dir={tmp_path}", *overrides], hydra_node=True)


def resolved(cfg) -> dict:
    """Every job key resolved, plus the hydra keys a launch resolves (hydra.runtime.* only exists
    inside a real run)."""
    out: dict = {}
    for k in cfg:
        if k != "hydra":
            node = cfg[k]
            out[k] = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
    out["hydra"] = {k: OmegaConf.to_container(cfg.hydra[k], resolve=True) for k in ("run", "sweep", "launcher")}
    return out


def group_options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


# a grid point in which each option of each group is meaningful
CONTEXT = {
    "pretrain": ["downstream=none"],
    "objective": ["pretrain=slakh", "downstream=none"],
    "augment": [],
    "finetune": ["downstream=bach10"],
    "downstream": ["pretrain=slakh"],
    "model": [],
    "trainer": [],
    "logger": [],
    "paths": [],
    "experiment": [],
}


@pytest.mark.parametrize("group,option", [(g, o) for g in CONTEXT for o in group_options(g)])
def test_every_group_option_composes_and_resolves(group: str, option: str, tmp_path: Path) -> None:
    overrides = [f"{group}={option}", *CONTEXT[group]]
    if (group, option) == ("pretrain", "none"):
        overrides = ["pretrain=none", "downstream=bach10"]  # no corpus: the baseline
    if (group, option) == ("downstream", "stems"):
        overrides.append("downstream.dataset.sources=[lead,rhythm]")  # `???` by design: yours to set
    cfg = full_config(overrides, tmp_path)
    data = resolved(cfg)
    assert cfg.hydra.runtime.choices[group] == option
    plan = make_plan(cfg)
    assert plan.run_dir.is_relative_to(tmp_path)
    # Hydra writes a single run into the run directory and a multirun into <runs>/<study>/<subdir>
    assert Path(data["hydra"]["run"]["dir"]) == plan.run_dir
    assert Path(data["hydra"]["sweep"]["dir"]) / data["hydra"]["sweep"]["subdir"] == plan.run_dir


@pytest.mark.parametrize("trainer,devices", [("default", 1), ("cpu", 1), ("gpu", 1), ("ddp", 2)])
def test_slurm_launcher_tasks_and_gpus_follow_trainer_devices(trainer: str, devices: int, tmp_path: Path) -> None:
    cfg = full_config(["hydra/launcher=slurm", f"trainer={trainer}"], tmp_path)
    launcher = resolved(cfg)["hydra"]["launcher"]
    assert launcher["_target_"].endswith("SlurmLauncher")
    assert launcher["tasks_per_node"] == launcher["gpus_per_node"] == devices == cfg.trainer.devices
    assert launcher["submitit_folder"] == f"{tmp_path}/{cfg.study}/.submitit/%j"
    # trainer=ddp trainer.devices=4: one command-line key moves both
    cfg = full_config(["hydra/launcher=slurm", f"trainer={trainer}", "trainer.devices=4"], tmp_path)
    assert cfg.hydra.launcher.tasks_per_node == cfg.hydra.launcher.gpus_per_node == 4


def test_local_example_only_sets_launcher_keys(tmp_path: Path) -> None:
    cfg = full_config(["hydra/launcher=slurm"], tmp_path)
    example = OmegaConf.load(CONF / "local" / "example.yaml")
    unknown = set(example.keys()) - set(cfg.hydra.launcher.keys())
    assert not unknown, f"conf/local/example.yaml sets keys the SLURM launcher does not have: {unknown}"


@pytest.mark.parametrize("sweep", ["pretrain", "zeroshot", "finetune", "baseline"])
def test_sweep_expands_to_the_study_grid(sweep: str, tmp_path: Path) -> None:
    cfg = full_config(["experiment=tiny", f"+sweeps={sweep}"], tmp_path)
    params = {k: str(v) for k, v in cfg.hydra.sweeper.params.items()}
    jobs = expand(params)  # Hydra's BasicSweeper.split_arguments, as in `train.py -m`
    runs = len(EXPECTED[sweep])
    product = 1
    for k in SWEPT[sweep]:
        product *= len(AXES[k])
    # the sweep's product also holds the points the grid excludes, which are no runs
    left_out = product - runs
    assert len(jobs) == product
    got, refused = set(), 0
    for job in jobs:  # every job composes to a valid plan of the expected stage, or is refused by name
        job_cfg = full_config(["experiment=tiny", f"+sweeps={sweep}", *(f"{k}={v}" for k, v in job.items())], tmp_path)
        point = {"objective": "dc", "augment": "none", **job}
        if sweep != "baseline" and ruled_out(point):
            if point["augment"] == "incoherent" and point["objective"] != "dc":
                with pytest.raises(PlanError, match="augment=incoherent with objective="):
                    make_plan(job_cfg)
            refused += 1
            continue
        plan = make_plan(job_cfg)
        assert plan.stage == sweep
        got.add(plan.run_dir.relative_to(tmp_path / "tiny").as_posix())
    assert got == EXPECTED[sweep]
    assert refused == left_out


def test_grid_points_read_the_same_sweeps() -> None:
    for sweep, expected in EXPECTED.items():
        assert {gp.subdir for gp in grid_points([sweep])} == expected
    assert len(grid_points()) == sum(len(v) for v in EXPECTED.values())
    paper = grid_points(overrides=["pretrain_steps=end", "objective=dc"])
    n_pre = len(AXES["pretrain"]) * len(AXES["augment"])  # the paper's grid: 87 training runs and 36 probes
    n_down = len(DOWNSTREAM)
    assert len(paper) == n_pre + n_pre * n_down + n_pre * len(MODES) * n_down + n_down


def test_command_line_narrows_a_grid() -> None:
    bach = grid_points(["finetune"], ["downstream=bach10"])
    assert {gp.subdir for gp in bach} == {s for s in EXPECTED["finetune"] if "-bach10" in s}
    two = grid_points(["pretrain"], ["pretrain=musdb", "augment=none,pitch"])
    assert [gp.subdir for gp in two] == ["pretrain/musdb-none", "pretrain/musdb-pitch"]
    # a downstream set narrows fine-tuning and baselines but leaves the pretraining grid alone
    study = grid_points(overrides=["downstream=dagstuhl", "study=x", "hydra/launcher=slurm"])
    assert len(study) == len(PAIRS) * (1 + len(STEPS) * (1 + len(MODES))) + 1
