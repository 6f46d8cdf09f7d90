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


def quiet_trainer(steps: int, tmp_path=None, **extra) -> L.Trainer:
    """A CPU trainer of ``steps`` steps, one validation at the end, nothing logged or saved."""
    return L.Trainer(
        accelerator="cpu",
        max_steps=steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        val_check_interval=steps,
        check_val_every_n_epoch=None,
        default_root_dir=str(tmp_path) if tmp_path else None,
        **extra,
    )


def train_steps(system: SeparationSystem, steps: int = 3, tmp_path=None) -> L.Trainer:
    dm = generated.build(SOURCES[: len(system.source_names)], 0.5, 2, steps, seed=0, n_val=2, n_test=2)
    trainer = quiet_trainer(steps, tmp_path, use_distributed_sampler=False)
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
    trainer = quiet_trainer(steps, tmp_path)
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
    from transfersep.model.export import export_model
    from transfersep.model.loading import load_model

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
    with pytest.raises(ValueError, match="objective=mixup: no such pretraining objective; choose one of dc, mixit"):
        SeparationSystem(model=TINY, phase="pretrain", source_names=SOURCES, objective="mixup")
    # no settings: the defaults (four outputs, a 30-dB ceiling), recorded with the model
    s = SeparationSystem(model=TINY, phase="pretrain", source_names=OUTPUTS, objective="mixit")
    assert s.hparams.mixit == {"outputs": 4, "snr_max_db": 30.0}


# -- bootstrapped DC pretraining -----------------------------------------------------------------
def hand_batch(seed: int = 0, n: int = 4000) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Two mixtures of a tone and a noise burst; the ideal assignment of each bin, by torch.stft."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(n) / 16000
    tone = 0.3 * torch.sin(2 * torch.pi * 330 * t)[None] * torch.rand(2, 1, generator=g)
    noise = 0.1 * torch.randn(2, n, generator=g) * (t > 0.1)
    window = torch.hann_window(512).sqrt()
    mags = [torch.stft(s, 512, 128, window=window, return_complex=True).abs().transpose(1, 2) for s in (tone, noise)]
    labels = (mags[1] > mags[0]).long()  # [B, T, F]: 1 where the noise dominates
    mix = tone + noise
    return {"mix": mix, "sources": mix[:, None]}, labels


def test_bootstrap_loss_with_full_agreement_is_the_supervised_dc_loss():
    from oracles import naive_dc

    torch.manual_seed(0)
    boot = SeparationSystem(model=TINY, phase="pretrain", source_names=["mix"], objective="bootstrap").eval()
    sup = SeparationSystem(model=TINY, phase="pretrain", source_names=["tone", "noise"]).eval()
    sup.model.load_flexible(boot.model.state_dict())
    batch, labels = hand_batch()
    batch = {**batch, "dc_labels": labels, "dc_weights": torch.ones(labels.shape)}
    with torch.no_grad():
        mag = boot.stft(batch["mix"]).abs()
        emb = boot.model.embed(boot.model.features(mag))
        got = boot.compute_losses(batch)["dc"]
    torch.testing.assert_close(got, naive_dc(emb, labels, 2, mag).float(), rtol=1e-4, atol=1e-6)
    # the supervised DC loss of two stems equals the bootstrap loss on their ideal assignment
    stems = torch.stack([hand_batch()[0]["mix"] * 0.7, hand_batch(seed=5)[0]["mix"]], 1)
    with torch.no_grad():
        src_mag = sup.stft(stems).abs()
        ideal = (src_mag[:, 1] > src_mag[:, 0]).long()  # ties to the first source, as argmax
        out_sup = sup.compute_losses({"mix": stems.sum(1), "sources": stems})["dc"]
        boot_batch = {"mix": stems.sum(1), "sources": stems.sum(1)[:, None], "dc_labels": ideal}
        out_boot = boot.compute_losses({**boot_batch, "dc_weights": torch.ones(ideal.shape)})["dc"]
    torch.testing.assert_close(out_boot, out_sup, rtol=1e-5, atol=1e-7)
    # agreement weights multiply the magnitude weights; dc_weights="none" uses them alone
    w = torch.rand(labels.shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        got_w = boot.compute_losses({**batch, "dc_weights": w})["dc"]
        boot.hparams.dc_weights = "none"
        got_none = boot.compute_losses({**batch, "dc_weights": w})["dc"]
    torch.testing.assert_close(got_w, naive_dc(emb, labels, 2, mag * w).float(), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(got_none, naive_dc(emb, labels, 2, w).float(), rtol=1e-4, atol=1e-6)


def test_bootstrap_steps_lower_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    system = SeparationSystem(model=TINY, phase="pretrain", source_names=["mix"], objective="bootstrap")
    batch, labels = hand_batch(seed=2)
    batch = {**batch, "dc_labels": labels, "dc_weights": torch.rand(labels.shape) * 0.5 + 0.5}
    opt = torch.optim.Adam(system.trainable_parameters(), lr=1e-2)
    losses_seen = []
    for _ in range(15):
        loss = system.compute_losses(batch)["loss"]
        losses_seen.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert losses_seen[-1] < 0.8 * losses_seen[0]
    assert system.model.mask_head.weight.grad is None  # pretraining: the mask head gets no gradient


def test_bootstrap_pretraining_runs_on_labelled_loaders(tmp_path):
    from transfersep.data.bootstrap import add_labels

    torch.manual_seed(0)
    system = SeparationSystem(model=TINY, phase="pretrain", source_names=["mix"], objective="bootstrap")
    dm = add_labels(generated.build(["mix"], 0.5, 2, 2, seed=0, n_val=2, n_test=2), {})
    before = snapshot(system)
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        val_check_interval=2,
        check_val_every_n_epoch=None,
        default_root_dir=str(tmp_path),
    )
    trainer.fit(system, datamodule=dm)
    assert torch.isfinite(trainer.callback_metrics["val/loss"])
    assert not torch.equal(before["embedding_head.weight"], system.model.embedding_head.weight)
    with pytest.raises(KeyError, match="dc_labels"):
        system.compute_losses({k: v[None] for k, v in generated.GeneratedExcerpts(1, 0.5, 0, "x", 1)[0].items()})
