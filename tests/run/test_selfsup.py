"""Self-supervised pretraining end to end from the command line (tiny, CPU, generated data): each
objective pretrains, its model is probed zero-shot and fine-tuned like a DC pretraining's; an
objective added by the three files docs/extending.md names runs the same way; the objective is one
key, so a config that contradicts it is refused in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from test_chain import COMMON, model_state, status, train

from project import ROOT, copy_conf
from transfersep.files import FINAL_CKPT


@pytest.mark.parametrize(
    "pretrain,objective,probe",
    [
        ("slakh", "mixit", "mixit-grouping"),
        ("slakh", "bootstrap", "dc-kmeans"),
        ("mixtures", "mixit", "mixit-grouping"),  # any folder of mixtures (generated here)
        ("mixtures", "bootstrap", "dc-kmeans"),
    ],
)
def test_self_supervised_pretraining_then_probe_and_fine_tune(
    pretrain: str, objective: str, probe: str, tmp_path: Path
):
    study = tmp_path / "tiny"
    name = f"{pretrain}_{'boot' if objective == 'bootstrap' else objective}"  # the folders runs had before the axis
    train(tmp_path, f"pretrain={pretrain}", f"objective={objective}")
    pre = study / "pretrain" / f"{name}-none"
    assert status(pre)["state"] == "finished"
    assert status(pre)["grid_point"]["pretrain"] == name and status(pre)["grid_point"]["objective"] == objective
    hp = torch.load(pre / FINAL_CKPT, map_location="cpu", weights_only=False)["hyper_parameters"]
    assert hp["objective"] == objective and hp["phase"] == "pretrain"
    before = model_state(pre / FINAL_CKPT)
    if objective == "mixit":  # the mask head separated into M outputs; the embedding head got no gradient
        assert before["mask_head.weight"].shape[0] == 4 * before["norm.gain"].shape[0]

    point = [f"pretrain={pretrain}", f"objective={objective}", "downstream=dagstuhl"]
    train(tmp_path, *point, "finetune=zeroshot")
    result = json.loads((study / "zeroshot" / f"{name}-none-dagstuhl" / "result.json").read_text())
    assert result["extra"]["method"] == probe and result["n_excerpts"] == 4

    train(tmp_path, *point, "finetune=mask")
    ft = study / "finetune" / f"{name}-none-mask-dagstuhl"
    assert status(ft)["state"] == "finished"
    after = model_state(ft / FINAL_CKPT)
    # the backbone came from the self-supervised model and stayed frozen; the mask head is the set's (2 sources)
    assert all(torch.equal(after[k], before[k]) for k in before if k.startswith(("blstm.", "norm.")))
    assert after["mask_head.weight"].shape[0] == 2 * after["norm.gain"].shape[0]
    assert (ft / "result.json").is_file()


@pytest.mark.parametrize(
    "overrides,says",
    [
        # the objective set behind its group's back: its folder and settings would not follow
        (["pretrain=slakh", "pretrain.objective=bootstrap"], "write objective=bootstrap"),
        # whether the corpus is read without stems follows from the objective alone
        (
            ["pretrain=slakh", "objective=mixit", "pretrain.dataset.unlabeled=false"],
            "no key pretrain.dataset.unlabeled",
        ),
        (["pretrain=slakh", "+pretrain.dataset.unlabeled=true"], "follows from the pretraining objective"),
        # the former corpus names that held an objective
        (["pretrain=slakh_mixit"], "write pretrain=slakh objective=mixit"),
        (["pretrain=mixtures_boot"], "write pretrain=mixtures objective=bootstrap"),
        (["pretrain=slakh", "objective=mixit", "augment=incoherent"], "reads its corpus without stems"),
    ],
)
def test_a_pretraining_that_contradicts_its_objective_is_refused_in_one_line(tmp_path, overrides, says):
    p = train(tmp_path, *overrides, check=False)
    assert p.returncode == 2, p.stdout + p.stderr
    errors = [line for line in p.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and says in errors[0], p.stderr
    assert not (tmp_path / "tiny" / "pretrain" / "slakh-none").exists()  # nothing trained as supervised Slakh


# The three files of "Adding an objective" (docs/extending.md): its registry entry with its loss,
# conf/objective/<name>.yaml, and its value on the grid's objective axis.
FAKE_ENTRY = """
    from transfersep.model import objectives


    def half_dc(system, batch):  # a trivial loss: half the deep-clustering loss on the stems
        out = system.stem_losses(batch)
        return {"fake": out["dc"], "loss": 0.5 * out["dc"]}


    objectives.register(
        objectives.Objective(
            "fake", half_dc, trains="embedding", items="stems", reads_stems=True, probe="clusters", folder="_fake"
        )
    )
    from transfersep.cli.train import main

    main()
"""


@pytest.mark.slow
def test_an_added_objective_runs_end_to_end_from_three_files(tmp_path):
    conf = copy_conf(tmp_path, lambda g: g["axes"].update(objective=[*g["axes"]["objective"], "fake"]))
    (conf / "objective" / "fake.yaml").write_text("# @package pretrain\nobjective: fake\n")
    harness = tmp_path / "train_fake.py"
    harness.write_text(textwrap.dedent(FAKE_ENTRY))
    env = {**os.environ, "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1", "TRANSFERSEP_CONF": str(conf)}

    def run(*overrides: str) -> None:
        cmd = [sys.executable, str(harness), *COMMON, f"paths.runs_dir={tmp_path}", "pretrain=slakh", "objective=fake"]
        p = subprocess.run([*cmd, *overrides], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]

    run()
    pre = tmp_path / "tiny" / "pretrain" / "slakh_fake-none"
    assert status(pre)["state"] == "finished" and status(pre)["grid_point"]["objective"] == "fake"
    hp = torch.load(pre / FINAL_CKPT, map_location="cpu", weights_only=False)["hyper_parameters"]
    assert hp["objective"] == "fake"
    logged = next(pre.rglob("metrics.csv")).read_text().splitlines()[0]
    assert "train/fake" in logged  # its own loss trained it

    run("downstream=bach10", "finetune=zeroshot")
    result = json.loads((tmp_path / "tiny" / "zeroshot" / "slakh_fake-none-bach10" / "result.json").read_text())
    assert result["extra"]["method"] == "dc-kmeans" and result["extra"]["objective"] == "fake"
    run("downstream=bach10", "finetune=whole")
    assert status(tmp_path / "tiny" / "finetune" / "slakh_fake-none-whole-bach10")["state"] == "finished"
