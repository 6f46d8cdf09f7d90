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


# -- MixIT pretraining -------------------------------------------------------------------------
MIXIT = {"outputs": 4, "snr_max_db": 30.0, "gain_db": 6.0}
OUTPUTS = ["output1", "output2", "output3", "output4"]


def mixit_batch(b: int = 2, n: int = 8000, seed: int = 0) -> dict[str, torch.Tensor]:
    """The MixIT batch contract: two reference mixtures of different generated tracks, their sum the input."""
    import numpy as np

    rng = np.random.default_rng(seed)
    refs = torch.stack(
        [torch.stack([torch.from_numpy(generated.make_sources(rng, 3, n)).sum(0) for _ in range(2)]) for _ in range(b)]
    )  # [B, 2, N]
    return {"mix": refs.sum(1), "sources": refs}


def fit_on(system: SeparationSystem, batch: dict, steps: int, tmp_path) -> L.Trainer:
    """``steps`` training steps on the same batch each time, one validation on it at the end."""
    loader = torch.utils.data.DataLoader([batch] * steps, batch_size=None)
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
        default_root_dir=str(tmp_path),
    )
    trainer.fit(system, train_dataloaders=loader, val_dataloaders=torch.utils.data.DataLoader([batch], batch_size=None))
    assert trainer.global_step == steps
    return trainer


def test_mixit_pretraining_lowers_its_loss_and_leaves_the_embedding_head(tmp_path):
    torch.manual_seed(0)
    system = SeparationSystem(
        model=TINY, phase="pretrain", source_names=OUTPUTS, objective="mixit", mixit=MIXIT, lr=1e-2
    )
    assert system.model.mask_head.out_features == 257 * 4
    batch = mixit_batch()
    with torch.no_grad():
        first = float(system.compute_losses(batch)["loss"])
    before = snapshot(system)
    trainer = fit_on(system, batch, 6, tmp_path)
    with torch.no_grad():
        last = float(system.compute_losses(batch)["loss"])
    assert last < first - 0.1, (first, last)
    assert float(trainer.callback_metrics["val/loss"]) == pytest.approx(last, abs=1e-4)  # validated the same way
    after = snapshot(system)
    for k in before:
        changed = not torch.equal(before[k], after[k])
        assert changed != k.startswith("embedding_head."), f"{k}: changed={changed}"
    opt_params = {id(p) for g in system.optimizers().optimizer.param_groups for p in g["params"]}
    assert opt_params == {id(p) for n, p in system.model.named_parameters() if not n.startswith("embedding_head.")}


def test_a_mixit_checkpoint_reloads_alone_with_its_objective(tmp_path):
    from transfersep.model.package import export_model, load_model

    torch.manual_seed(0)
    system = SeparationSystem(model=TINY, phase="pretrain", source_names=OUTPUTS, objective="mixit", mixit=MIXIT)
    trainer = fit_on(system, mixit_batch(), 2, tmp_path)
    ckpt = tmp_path / "m.ckpt"
    trainer.save_checkpoint(ckpt)
    again = SeparationSystem.load_from_checkpoint(ckpt, map_location="cpu")
    assert again.hparams.objective == "mixit" and again.hparams.mixit == MIXIT and again.source_names == OUTPUTS
    assert not again.model.embedding_head.weight.requires_grad and again.model.mask_head.weight.requires_grad
    for k, v in system.model.state_dict().items():
        assert torch.equal(v, again.model.state_dict()[k])
    # the checkpoint and its package load as a model of four outputs that says it is MixIT
    pkg = export_model(ckpt, tmp_path / "model.safetensors")
    for path in (ckpt, pkg):
        lm = load_model(path)
        assert lm.objective == "mixit" and lm.source_names == OUTPUTS and lm.meta["mixit"] == MIXIT
        mix = mixit_batch(1, 4000)["mix"]
        torch.testing.assert_close(lm.separate(mix), system.separate(mix))
        assert lm.separate(mix).shape == (1, 4, 4000)


def test_mixit_settings_are_checked():
    with pytest.raises(ValueError, match="output1"):
        SeparationSystem(model=TINY, phase="pretrain", source_names=SOURCES, objective="mixit", mixit=MIXIT)
    with pytest.raises(ValueError, match="pretraining objective"):
        SeparationSystem(model=TINY, phase="whole", source_names=OUTPUTS, objective="mixit", mixit=MIXIT)
    with pytest.raises(ValueError, match="pretrain.mixit.outputs"):
        SeparationSystem(
            model=TINY, phase="pretrain", source_names=["output1"], objective="mixit", mixit={"outputs": 1}
        )
    with pytest.raises(ValueError, match="pretrain.objective"):
        SeparationSystem(model=TINY, phase="pretrain", source_names=SOURCES, objective="mixup")
    # no settings: the defaults (four outputs, a 30-dB ceiling), recorded with the model
    s = SeparationSystem(model=TINY, phase="pretrain", source_names=OUTPUTS, objective="mixit")
    assert s.hparams.mixit == {"outputs": 4, "snr_max_db": 30.0}
