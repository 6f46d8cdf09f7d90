"""Phases: which weights train, which stay bit-identical; checkpoints reload on their own."""

from __future__ import annotations

import copy

import lightning as L
import pytest
import torch

from transfersep.data import generated
from transfersep.model import ChimeraConfig, ChimeraNet
from transfersep.model.system import SeparationSystem

TINY = dict(hidden_size=16, num_layers=2, embedding_dim=6)
SOURCES = ["a", "b", "c"]


def train_steps(system: SeparationSystem, steps: int = 3, tmp_path=None) -> L.Trainer:
    dm = generated.build(SOURCES[: len(system.source_names)], 0.5, 2, steps, seed=0, n_val=2, n_test=2)
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        val_check_interval=steps,
        check_val_every_n_epoch=None,
        use_distributed_sampler=False,
        default_root_dir=str(tmp_path) if tmp_path else None,
    )
    trainer.fit(system, datamodule=dm)
    assert trainer.global_step == steps
    return trainer


def snapshot(system):
    return {k: v.detach().clone() for k, v in system.model.state_dict().items()}


def test_mask_phase_trains_only_last_mask_layer(tmp_path):
    torch.manual_seed(0)
    system = SeparationSystem(model=TINY, phase="mask", source_names=SOURCES)
    before = snapshot(system)
    train_steps(system, 3, tmp_path)
    after = snapshot(system)
    for k in before:
        if k.startswith("mask_head."):
            assert not torch.equal(before[k], after[k]), f"{k} did not train"
        else:
            assert torch.equal(before[k], after[k]), f"{k} changed in mask phase"
    opt_params = {id(p) for g in system.optimizers().optimizer.param_groups for p in g["params"]}
    assert opt_params == {id(p) for p in system.model.mask_head.parameters()}


def test_pretrain_phase_leaves_mask_head_untouched(tmp_path):
    torch.manual_seed(0)
    system = SeparationSystem(model=TINY, phase="pretrain", source_names=SOURCES)
    before = snapshot(system)
    train_steps(system, 3, tmp_path)
    after = snapshot(system)
    assert torch.equal(before["mask_head.weight"], after["mask_head.weight"])
    assert torch.equal(before["mask_head.bias"], after["mask_head.bias"])
    assert not torch.equal(before["embedding_head.weight"], after["embedding_head.weight"])
    assert not torch.equal(before["blstm.weight_hh_l0"], after["blstm.weight_hh_l0"])


def test_whole_phase_trains_every_weight(tmp_path):
    torch.manual_seed(0)
    system = SeparationSystem(model=TINY, phase="whole", source_names=SOURCES)
    before = snapshot(system)
    train_steps(system, 2, tmp_path)
    after = snapshot(system)
    unchanged = [k for k in before if torch.equal(before[k], after[k])]
    assert unchanged == []


def test_autoclip_history_grows_one_per_step(tmp_path):
    system = SeparationSystem(model=TINY, phase="whole", source_names=SOURCES[:2])
    train_steps(system, 3, tmp_path)
    assert len(system.autoclip.history) == 3


def test_checkpoint_reloads_alone_and_into_other_source_count(tmp_path):
    torch.manual_seed(0)
    system = SeparationSystem(model=TINY, phase="whole", source_names=SOURCES)
    trainer = train_steps(system, 2, tmp_path)
    ckpt = tmp_path / "x.ckpt"
    trainer.save_checkpoint(ckpt)

    again = SeparationSystem.load_from_checkpoint(ckpt, map_location="cpu")
    assert again.source_names == SOURCES and again.phase == "whole"
    for k, v in system.model.state_dict().items():
        assert torch.equal(v, again.model.state_dict()[k])
    assert len(again.autoclip.history) == 2

    state = {
        k[len("model.") :]: v
        for k, v in torch.load(ckpt, weights_only=True)["state_dict"].items()
        if k.startswith("model.")
    }
    four = ChimeraNet(ChimeraConfig(**TINY, n_sources=4))
    fresh_head = copy.deepcopy(four.mask_head.state_dict())
    skipped = four.load_flexible(state)
    assert skipped == ["mask_head.bias", "mask_head.weight"]
    assert four.mask_head.weight.shape[0] == 257 * 4
    assert torch.equal(four.mask_head.weight, fresh_head["weight"])  # rebuilt, not loaded
    for k, v in four.state_dict().items():
        if not k.startswith("mask_head."):
            assert torch.equal(v, state[k])


def test_load_flexible_rejects_other_backbone():
    a = ChimeraNet(ChimeraConfig(**TINY))
    b = ChimeraNet(ChimeraConfig(**{**TINY, "hidden_size": 8}))
    with pytest.raises(ValueError, match="hidden_size"):
        b.load_flexible(a.state_dict())


def test_separate_returns_one_waveform_per_source():
    system = SeparationSystem(model=TINY, phase="whole", source_names=SOURCES)
    mix = torch.randn(2, 8000)
    est = system.separate(mix)
    assert est.shape == (2, 3, 8000)
