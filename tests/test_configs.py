"""Every config under conf/ and sweeps/ composes and resolves (compose API, as Hydra would build
it for `python train.py ...`), and the sweeps expand to the study's grid of the paper.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from project import CONF
from transfersep.run.config import compose as tool_compose
from transfersep.run.plan import PlanError, make_plan
from transfersep.study.grid import expand, grid_points

# the study of the paper, written out independently of sweeps/ and plan.py
CORPORA = ["musdb", "slakh", "both"]
AUGMENTS = ["none", "pitch", "stretch", "incoherent"]
SELF_SUPERVISED = ["slakh_mixit", "slakh_boot"]  # mixtures without stems: no incoherent mixing
PAIRS = [*itertools.product(CORPORA, AUGMENTS), *itertools.product(SELF_SUPERVISED, AUGMENTS[:3])]
MODES = ["whole", "mask"]
DOWNSTREAM = ["bach10", "dagstuhl", "remixpacks"]
LENGTHS = ["-quarter", "-half", ""]  # pretrain_steps: a kept checkpoint's suffix; the end keeps the paper's names
EXPECTED = {
    "pretrain": {f"pretrain/{p}-{a}" for p, a in PAIRS},
    "finetune": {
        f"finetune/{p}-{a}-{f}-{d}{at}" for (p, a), f, d, at in itertools.product(PAIRS, MODES, DOWNSTREAM, LENGTHS)
    },
    "baseline": {f"baseline/{d}" for d in DOWNSTREAM},
    "zeroshot": {f"zeroshot/{p}-{a}-{d}{at}" for (p, a), d, at in itertools.product(PAIRS, DOWNSTREAM, LENGTHS)},
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
    runs = {"pretrain": 18, "zeroshot": 3 * 54, "finetune": 3 * 108, "baseline": 3}[sweep]
    assert len(EXPECTED[sweep]) == runs
    # the sweep's product also holds the self-supervised x incoherent points, which are no runs
    left_out = {"pretrain": 2, "zeroshot": 2 * 3 * 3, "finetune": 2 * 2 * 3 * 3, "baseline": 0}[sweep]
    assert len(jobs) == runs + left_out
    got, refused = set(), 0
    for job in jobs:  # every job composes to a valid plan of the expected stage, or is refused by name
        job_cfg = full_config(["experiment=tiny", f"+sweeps={sweep}", *(f"{k}={v}" for k, v in job.items())], tmp_path)
        if job.get("augment") == "incoherent" and job.get("pretrain") in SELF_SUPERVISED:
            with pytest.raises(PlanError, match="augment=incoherent with pretrain="):
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
    assert len(grid_points()) == 18 + 3 * 54 + 3 * 108 + 3
    paper = grid_points(overrides=["pretrain_steps=end", "pretrain=musdb,slakh,both"])
    assert len(paper) == 12 + 36 + 72 + 3  # the paper's grid: 87 training runs and 36 probes


def test_command_line_narrows_a_grid() -> None:
    bach = grid_points(["finetune"], ["downstream=bach10"])
    assert {gp.subdir for gp in bach} == {s for s in EXPECTED["finetune"] if "-bach10" in s}
    two = grid_points(["pretrain"], ["pretrain=musdb", "augment=none,pitch"])
    assert [gp.subdir for gp in two] == ["pretrain/musdb-none", "pretrain/musdb-pitch"]
    # a downstream set narrows fine-tuning and baselines but leaves the pretraining grid alone
    study = grid_points(overrides=["downstream=dagstuhl", "study=x", "hydra/launcher=slurm"])
    assert len(study) == 18 + 3 * 18 + 3 * 36 + 1
