"""Self-supervised pretraining end to end from the command line (tiny, CPU, generated data): each
objective pretrains, its model is probed zero-shot and fine-tuned like a DC pretraining's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_chain import model_state, status, train

from transfersep.files import FINAL_CKPT


@pytest.mark.parametrize(
    "pretrain,objective,probe",
    [
        ("slakh_mixit", "mixit", "mixit-grouping"),
        ("slakh_boot", "bootstrap", "dc-kmeans"),
        ("mixtures_mixit", "mixit", "mixit-grouping"),  # any folder of mixtures (generated here)
        ("mixtures_boot", "bootstrap", "dc-kmeans"),
    ],
)
def test_self_supervised_pretraining_then_probe_and_fine_tune(
    pretrain: str, objective: str, probe: str, tmp_path: Path
):
    study = tmp_path / "tiny"
    train(tmp_path, f"pretrain={pretrain}")
    pre = study / "pretrain" / f"{pretrain}-none"
    assert status(pre)["state"] == "finished"
    hp = torch.load(pre / FINAL_CKPT, map_location="cpu", weights_only=False)["hyper_parameters"]
    assert hp["objective"] == objective and hp["phase"] == "pretrain"
    before = model_state(pre / FINAL_CKPT)
    if objective == "mixit":  # the mask head separated into M outputs; the embedding head got no gradient
        assert before["mask_head.weight"].shape[0] == 4 * before["norm.gain"].shape[0]

    train(tmp_path, f"pretrain={pretrain}", "downstream=dagstuhl", "finetune=zeroshot")
    result = json.loads((study / "zeroshot" / f"{pretrain}-none-dagstuhl" / "result.json").read_text())
    assert result["extra"]["method"] == probe and result["n_excerpts"] == 4

    train(tmp_path, f"pretrain={pretrain}", "downstream=dagstuhl", "finetune=mask")
    ft = study / "finetune" / f"{pretrain}-none-mask-dagstuhl"
    assert status(ft)["state"] == "finished"
    after = model_state(ft / FINAL_CKPT)
    # the backbone came from the self-supervised model and stayed frozen; the mask head is the set's (2 sources)
    assert all(torch.equal(after[k], before[k]) for k in before if k.startswith(("blstm.", "norm.")))
    assert after["mask_head.weight"].shape[0] == 2 * after["norm.gain"].shape[0]
    assert (ft / "result.json").is_file()
