"""sweeps/grid.yaml is the one place of the study's grid: a downstream set added there (and nowhere
else) reaches the sweeps, the study runner, the status command and the report; a malformed file
stops with one line naming the file and the key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from project import ROOT, copy_conf, grid_counts
from transfersep.cli import main as cli_main
from transfersep.run.config import compose
from transfersep.study.grid import GridError, expand, grid_points, load_grid, override_key, register_resolver

register_resolver()  # ${grid_sweep:<stage>}, as the training command registers it

STAGES = ("pretrain", "zeroshot", "finetune", "baseline")


@pytest.fixture
def stems_conf(tmp_path: Path, monkeypatch) -> Path:
    """A copy of conf/ whose grid also has the downstream set `stems` (conf/downstream/stems.yaml)."""
    conf = copy_conf(tmp_path, lambda g: g["axes"]["downstream"].append("stems"))
    assert not (conf / "sweeps").is_symlink()
    monkeypatch.setenv("TRANSFERSEP_CONF", str(conf))
    return conf


def test_sweep_files_hold_no_values() -> None:
    for stage in STAGES:
        sweep = yaml.safe_load((ROOT / "sweeps" / f"{stage}.yaml").read_text())
        assert sweep == {"hydra": {"sweeper": {"params": "${grid_sweep:" + stage + "}"}}}, stage


def test_an_added_downstream_set_reaches_the_grid_points(stems_conf: Path) -> None:
    points = grid_points()
    n = grid_counts(stems_conf)  # the grid file's own sizes, four downstream sets now
    assert n["downstream"] == 4 and len(points) == n["total"]
    subdirs = {gp.subdir for gp in points}
    assert {"baseline/stems", "zeroshot/slakh-pitch-stems", "finetune/both-incoherent-mask-stems"} <= subdirs
    # at the end of pretraining, one probe and a fine-tune per mode of every pretraining
    assert sum(s.endswith("-stems") for s in subdirs) == n["pretrain"] * (1 + n["modes"])
    assert load_grid().label("downstream", "stems") == "stems"  # no label: its own name


def test_an_added_downstream_set_reaches_the_hydra_sweeps(stems_conf: Path) -> None:
    """What `python train.py -m +sweeps=baseline` expands to under this conf/."""
    cfg = compose(["+sweeps=baseline"], hydra_node=True)
    jobs = expand({k: str(v) for k, v in cfg.hydra.sweeper.params.items()})
    assert [j["downstream"] for j in jobs] == ["bach10", "dagstuhl", "remixpacks", "stems"]
    assert {(j["pretrain"], j["augment"], j["finetune"]) for j in jobs} == {("none", "none", "whole")}
    # a key on the command line still narrows the sweep
    assert [j["downstream"] for j in expand(dict(cfg.hydra.sweeper.params), ["downstream=stems"])] == ["stems"]


def test_study_dry_run_plans_the_added_set(stems_conf: Path, tmp_path: Path, capsys) -> None:
    runs = tmp_path / "runs"
    assert cli_main(["study", "--dry-run", "experiment=tiny", f"paths.runs_dir={runs}", "downstream=stems"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "+sweeps=" in ln]
    assert [ln.split("+sweeps=")[1].split()[0] for ln in lines] == list(STAGES)
    planned = set()
    for line in lines:
        args = line.split()
        stage = next(a for a in args if a.startswith("+sweeps=")).split("=")[1]
        narrow = [a for a in args if override_key(a) in ("pretrain", "objective", "augment", "finetune", "downstream")]
        # each command expands, under this conf/, as the grid's stage narrowed to stems
        cfg = compose([f"+sweeps={stage}"], hydra_node=True)
        planned |= {f"{stage}:{job['downstream']}" for job in expand(dict(cfg.hydra.sweeper.params), narrow)}
    assert planned == {"pretrain:none", "zeroshot:stems", "finetune:stems", "baseline:stems"}


def write_status(run: Path, gp: dict, done: str) -> None:
    run.mkdir(parents=True)
    (run / "status.json").write_text(json.dumps({"state": "finished", "grid_point": gp}))
    (run / done).write_text("{}")


def test_status_lists_the_added_set_and_zero_shot_runs(stems_conf: Path, tmp_path: Path, capsys) -> None:
    study = tmp_path / "runs" / "paper"
    probe = {"stage": "zeroshot", "pretrain": "slakh", "augment": "none", "finetune": "zeroshot"}
    write_status(study / "zeroshot" / "slakh-none-stems", {**probe, "downstream": "stems"}, "result.json")
    write_status(study / "zeroshot" / "slakh-none-bach10", {**probe, "downstream": "bach10"}, "result.json")
    write_status(study / "pretrain" / "slakh-none", {"stage": "pretrain", "pretrain": "slakh"}, "final.ckpt")

    # by default, what the study launched: its one pair, its two downstream sets (stems included)
    assert cli_main(["status", str(study), "--json"]) == 1
    rows = {r["subdir"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert len(rows) == 1 + 2 + 2 * 2 + 2 and rows["baseline/stems"]["state"] == "missing"
    assert rows["finetune/slakh-none-mask-stems"]["state"] == "missing"

    assert cli_main(["status", str(study), "--json", "--full-grid"]) == 1
    rows = {r["subdir"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    n = grid_counts(stems_conf)
    assert len(rows) == n["total"]
    assert rows["baseline/stems"]["state"] == "missing" and rows["finetune/musdb-none-whole-stems"]["in_grid"]
    assert rows["zeroshot/slakh-none-stems"]["state"] == "finished"
    assert rows["zeroshot/musdb-none-stems"]["state"] == "missing"

    # narrowed to stems, the bach10 probe is listed as a run outside the grid
    assert cli_main(["status", str(study), "--json", "--full-grid", "downstream=stems"]) == 1
    rows = {r["subdir"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert rows["zeroshot/slakh-none-bach10"]["state"] == "finished"
    assert not rows["zeroshot/slakh-none-bach10"]["in_grid"]
    one = grid_counts(stems_conf, downstream=["stems"])  # and the bach10 probe outside it
    assert len(rows) == one["total"] + 1


def test_report_expects_the_added_set(stems_conf: Path, tmp_path: Path) -> None:
    from transfersep.report.results import axis, downstream_order, expected_keys, study_grid

    downs = downstream_order(["stems", "bach10"])
    assert downs == ["bach10", "stems"]
    keys = expected_keys(downs)
    from transfersep.run.point import GridPoint

    assert GridPoint.baseline("stems") in keys and GridPoint("both", "stretch", "mask", "stems") in keys
    n = grid_counts(stems_conf, pretrain_steps=["end"])
    assert len(keys) == 2 * (1 + n["pretrain"] * n["modes"])

    # the report's --full-grid expects all four downstream sets of the grid
    full = study_grid(tmp_path / "runs" / "paper", {}, downstream_order(axis("downstream")), full=True)
    assert len(full) == n["baselines"] + n["finetunes"] and GridPoint.baseline("stems") in full


def _unknown_axis(g: dict) -> None:
    g["axes"]["model"] = ["chimera"]


def _unknown_swept_axis(g: dict) -> None:
    g["stages"]["finetune"]["sweeps"].append("mode")


def _unknown_waits_for(g: dict) -> None:
    g["stages"]["zeroshot"]["waits_for"] = "pretrian"


def _value_without_config(g: dict) -> None:
    g["axes"]["augment"].append("reverb")


def _fixed_key_makes_other_runs(g: dict) -> None:
    g["stages"]["baseline"]["fixed"]["pretrain"] = "musdb"


def _exclude_unknown_axis(g: dict) -> None:
    g["exclude"] = [{"model": ["tiny"]}]


def _exclude_everything(g: dict) -> None:
    g["exclude"] = [{}]


@pytest.mark.parametrize(
    "edit,key,says",
    [
        (_exclude_unknown_axis, "exclude[0].model", "no axis"),
        (_exclude_everything, "exclude[0]", "names no axis"),
        (_unknown_axis, "axes.model", "unknown axis"),
        (_unknown_swept_axis, "stages.finetune.sweeps", "'mode' is no axis"),
        (_unknown_waits_for, "stages.zeroshot.waits_for", "unknown stage 'pretrian'"),
        (_value_without_config, "axes.augment", "no config augment/reverb.yaml"),
        (_fixed_key_makes_other_runs, "stages.baseline", "its grid points are finetune runs"),
    ],
)
def test_malformed_grid_is_one_line(edit, key: str, says: str, tmp_path: Path, monkeypatch, capsys) -> None:
    conf = copy_conf(tmp_path, edit)
    path = conf / "sweeps" / "grid.yaml"
    monkeypatch.setenv("TRANSFERSEP_CONF", str(conf))
    with pytest.raises(GridError) as err:
        load_grid()
    assert str(err.value).startswith(f"{path}: {key}: ") and says in str(err.value)
    assert "\n" not in str(err.value)
    (tmp_path / "study").mkdir()
    assert cli_main(["status", str(tmp_path / "study")]) == 2
    assert capsys.readouterr().err == f"transfersep status: error: {err.value}\n"


def test_malformed_grid_stops_a_training_multirun(tmp_path: Path) -> None:
    conf = copy_conf(tmp_path)
    path = conf / "sweeps" / "grid.yaml"
    path.write_text(path.read_text().replace("axes:", "axes: [", 1))  # a YAML syntax error
    env = {**os.environ, "TRANSFERSEP_CONF": str(conf)}
    cmd = [sys.executable, "train.py", "-m", "+sweeps=pretrain", "experiment=tiny", f"paths.runs_dir={tmp_path / 'r'}"]
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 2, p.stdout + p.stderr
    assert p.stderr.startswith(f"error: {path}: not valid YAML (line ") and p.stderr.count("\n") == 1
    assert not (tmp_path / "r").exists()


def test_excluded_points_are_no_runs() -> None:
    grid = load_grid()
    # an objective without stems under incoherent mixing (the registry's rule), in a grid point or a record
    assert grid.excluded({"pretrain": "slakh", "objective": "mixit", "augment": "incoherent"})
    assert grid.excluded({"pretrain": "slakh_boot", "augment": "incoherent", "downstream": "bach10"})
    assert not grid.excluded({"pretrain": "slakh_mixit", "augment": "pitch"})
    assert not grid.excluded({"pretrain": "slakh", "augment": "incoherent"})
    # the grid file's own rule: self-supervised on the Slakh mixtures only
    assert grid.excluded({"pretrain": "musdb", "objective": "mixit", "augment": "none"})
    subdirs = {gp.subdir for gp in grid_points()}
    assert "pretrain/slakh_mixit-pitch" in subdirs and "finetune/slakh_boot-stretch-mask-bach10-half" in subdirs
    assert not any("_mixit-incoherent" in s or "_boot-incoherent" in s for s in subdirs)


def test_an_excluded_point_is_skipped_in_a_multirun_and_refused_alone(tmp_path: Path) -> None:
    runs = tmp_path / "r"
    point = ["pretrain=slakh", "objective=mixit", "augment=incoherent", "experiment=tiny", "data.generated=true"]
    cmd = [sys.executable, "train.py", "-m", "+sweeps=pretrain", *point, f"paths.runs_dir={runs}"]
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "skipped: " in p.stdout + p.stderr and "augment=incoherent with objective=mixit" in p.stdout
    assert not (runs / "tiny" / "pretrain").exists()  # nothing trained, no run directory left behind
    p = subprocess.run(
        [sys.executable, "train.py", *point, f"paths.runs_dir={runs}"], cwd=ROOT, capture_output=True, text=True
    )
    assert p.returncode == 2 and p.stderr.startswith("error: augment=incoherent with objective=mixit: ")
    assert p.stderr.count("\n") == 1 and not (runs / "tiny" / "pretrain").exists()
