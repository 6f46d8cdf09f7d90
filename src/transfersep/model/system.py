"""The LightningModule of every run: ChimeraNet + the phase that decides loss and trainable weights.

phase      loss                        trains
pretrain   DC                          everything but the mask head (it gets no gradient)
           MixIT (objective mixit)     everything but the embedding head; the mask head has M outputs
whole      alpha*DC + (1-alpha)*MI     every weight
mask       MI                          only the last mask layer; the rest is frozen at its loaded value

``objective`` says what a pretraining learns from: ``dc`` (the stems' ideal binary masks, the
paper); ``mixit`` (mixtures of two mixtures, ``transfersep.model.mixit``; its batches carry the two
reference mixtures as ``sources`` [B, 2, N] and the model's source names are its M outputs);
``bootstrap`` (the labels primitive grouping cues give each bin of the mixture, ``batch["dc_labels"]``,
one of ``bootstrap_groups`` groups, with their agreement as a bin weight, ``batch["dc_weights"]``,
times the magnitude weights when ``dc_weights="magnitude"``; see ``transfersep.data.bootstrap``).

It takes plain dict configs (not modules), saved as hyperparameters, so
``SeparationSystem.load_from_checkpoint(path)`` rebuilds a run's model on its own.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

from transfersep.audio import STFT, STFTConfig
from transfersep.model import ChimeraConfig, ChimeraNet, losses
from transfersep.model.autoclip import AutoClip
from transfersep.model.masking import separate_masks
from transfersep.model.schedule import plateau_patience, plateau_scheduler

PHASES = ("pretrain", "whole", "mask")
OBJECTIVES = ("dc", "mixit", "bootstrap")
MONITOR = "val/loss"  # the one monitored metric: LR plateau schedule and checkpoints use it


class SeparationSystem(L.LightningModule):
    def __init__(
        self,
        model: dict[str, Any],
        phase: str,
        source_names: list[str],
        alpha: float = 0.01,
        dc_weights: str = "magnitude",
        lr: float = 1e-3,
        autoclip_percentile: float = 10.0,
        plateau_patience_steps: int = 500,
        plateau_factor: float = 0.5,
        val_every_n_steps: int = 100,
        stft: dict[str, Any] | None = None,
        objective: str = "dc",
        mixit: dict[str, Any] | None = None,
        bootstrap_groups: int = 2,
    ):
        super().__init__()
        if phase not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")
        if objective not in OBJECTIVES:
            raise ValueError(f"pretrain.objective must be one of {OBJECTIVES}, got {objective!r}")
        if objective == "mixit":
            mixit = self._check_mixit(phase, source_names, mixit)
        if dc_weights not in ("magnitude", "none"):
            raise ValueError(f"loss.dc_weights must be 'magnitude' or 'none', got {dc_weights!r}")
        if objective == "bootstrap" and bootstrap_groups < 2:
            raise ValueError(f"bootstrap_groups must be at least 2, got {bootstrap_groups}")
        plateau_patience(plateau_patience_steps, val_every_n_steps)  # refuse a pair that does not fit
        self.save_hyperparameters()
        self.phase = phase
        self.source_names = list(source_names)
        self.model = ChimeraNet(ChimeraConfig(**{**model, "n_sources": len(source_names)}))
        self.stft = STFT(STFTConfig(**(stft or {})))
        self.autoclip = AutoClip(autoclip_percentile)
        self.apply_phase()

    @staticmethod
    def _check_mixit(phase: str, source_names: list[str], mixit: dict[str, Any] | None) -> dict[str, Any]:
        from transfersep.model.mixit import mixit_settings, output_names

        if phase != "pretrain":
            raise ValueError(f"objective mixit is a pretraining objective; phase {phase!r} trains with the stems")
        mixit = mixit_settings(mixit)
        if list(source_names) != output_names(mixit["outputs"]):
            raise ValueError(
                f"a MixIT model's source names are its outputs {output_names(mixit['outputs'])}, got "
                f"{list(source_names)}; pass transfersep.model.mixit.output_names(pretrain.mixit.outputs)"
            )
        return mixit

    # -- phase ---------------------------------------------------------------------------------
    def apply_phase(self) -> None:
        """Set requires_grad for the phase; ``configure_optimizers`` takes only trainable weights."""
        for name, p in self.model.named_parameters():
            if self.phase == "pretrain" and self.hparams.objective == "mixit":
                p.requires_grad_(not name.startswith("embedding_head."))
            elif self.phase == "pretrain":
                p.requires_grad_(not name.startswith("mask_head."))
            elif self.phase == "mask":
                p.requires_grad_(name.startswith("mask_head."))
            else:
                p.requires_grad_(True)

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    # -- computation ---------------------------------------------------------------------------
    def spectra(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(|X| [B, T, F], |S| [B, C, T, F]) of a batch, fp32 and contiguous even under autocast.

        The magnitudes feed the labels, the DC weights and the MI targets, so they stay fp32
        under bf16-mixed training (rounding |S| to bf16 could flip near-tied labels).
        """
        with torch.autocast(batch["mix"].device.type, enabled=False):
            mix_mag = self.stft(batch["mix"]).abs()
            src_mag = self.stft(batch["sources"]).abs()
        return mix_mag, src_mag

    def mixit_losses(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """MixIT on ``mix [B, N]`` = the sum of the two reference mixtures ``sources [B, 2, N]``: the mask
        head's M estimates (masks on the mixture STFT, its phase) against the references."""
        from transfersep.model.mixit import mixit_loss

        mix = batch["mix"]
        with torch.autocast(mix.device.type, enabled=False):
            spec = self.stft(mix)
        masks = self.model.mask(self.model.features(spec.abs()))  # [B, M, T, F]
        with torch.autocast(mix.device.type, enabled=False):  # the iSTFT and the loss in fp32 or wider
            est = self.stft.inverse(masks.float() * spec.unsqueeze(1), mix.shape[-1])
            loss, _ = mixit_loss(est, batch["sources"], self.hparams.mixit["snr_max_db"])
        return {"mixit": loss, "loss": loss}

    def bootstrap_losses(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """DC pretraining on the primitives' labels, each bin weighted by their agreement."""
        if "dc_labels" not in batch or "dc_weights" not in batch:
            raise KeyError(
                "objective bootstrap needs batches with dc_labels and dc_weights: serve the pretraining "
                "sets through transfersep.data.bootstrap (pretrain.objective=bootstrap does)"
            )
        with torch.autocast(batch["mix"].device.type, enabled=False):
            mix_mag = self.stft(batch["mix"]).abs()
        weights = batch["dc_weights"].float()
        if self.hparams.dc_weights == "magnitude":
            weights = weights * losses.magnitude_weights(mix_mag)
        emb = self.model.embed(self.model.features(mix_mag))
        dc = losses.deep_clustering_loss(emb, batch["dc_labels"], self.hparams.bootstrap_groups, weights)
        return {"dc": dc, "loss": dc}

    def compute_losses(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self.phase == "pretrain" and self.hparams.objective == "mixit":
            return self.mixit_losses(batch)
        if self.phase == "pretrain" and self.hparams.objective == "bootstrap":
            return self.bootstrap_losses(batch)
        mix_mag, src_mag = self.spectra(batch)
        out: dict[str, torch.Tensor] = {}
        if self.phase == "mask":
            with torch.no_grad():  # frozen backbone: no graph through the BLSTM
                feats = self.model.features(mix_mag)
            out["mi"] = losses.mask_inference_loss(self.model.mask(feats), mix_mag, src_mag)
            out["loss"] = out["mi"]
            return out
        feats = self.model.features(mix_mag)
        labels = losses.ideal_assignment(src_mag)
        weights = losses.magnitude_weights(mix_mag) if self.hparams.dc_weights == "magnitude" else None
        out["dc"] = losses.deep_clustering_loss(self.model.embed(feats), labels, len(self.source_names), weights)
        if self.phase == "pretrain":
            out["loss"] = out["dc"]
            return out
        out["mi"] = losses.mask_inference_loss(self.model.mask(feats), mix_mag, src_mag)
        out["loss"] = losses.chimera_loss(out["dc"], out["mi"], self.hparams.alpha)
        return out

    @torch.inference_mode()
    def separate(self, mix: torch.Tensor) -> torch.Tensor:
        """Waveform estimates [B, C, N] of mixtures [B, N] (masks on the mixture STFT, its phase)."""
        # no dropout/normalisation statistics differ between modes except LSTM dropout, which
        # inference must not apply; restore each submodule's own flag afterwards
        modes = {m: m.training for m in self.modules()}
        self.eval()
        est = separate_masks(self.model, self.stft, mix.to(self.device, torch.float32))
        for m, mode in modes.items():
            m.training = mode
        return est

    # -- Lightning hooks -----------------------------------------------------------------------
    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        out = self.compute_losses(batch)
        bs = batch["mix"].shape[0]
        for k, v in out.items():
            self.log(f"train/{k}", v.detach(), prog_bar=k == "loss", batch_size=bs)
        return out["loss"]

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        out = self.compute_losses(batch)
        bs = batch["mix"].shape[0]
        for k, v in out.items():
            name = MONITOR if k == "loss" else f"val/{k}"
            self.log(name, v, prog_bar=k == "loss", batch_size=bs, sync_dist=True)

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        norm, threshold = self.autoclip(self.trainable_parameters())
        self.log("train/grad_norm", norm)
        self.log("train/clip_threshold", threshold)

    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        opt = torch.optim.Adam(self.trainable_parameters(), lr=hp.lr)
        # stepped after each validation (every val_every_n_steps iterations), see schedule.py
        sched = plateau_scheduler(opt, hp.plateau_patience_steps, hp.val_every_n_steps, hp.plateau_factor)
        return {
            "optimizer": opt,
            "lr_scheduler": {
                "scheduler": sched,
                "monitor": MONITOR,
                "interval": "step",
                "frequency": hp.val_every_n_steps,
                "strict": True,
            },
        }

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["autoclip"] = self.autoclip.state_dict()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "autoclip" in checkpoint:
            self.autoclip.load_state_dict(checkpoint["autoclip"])
