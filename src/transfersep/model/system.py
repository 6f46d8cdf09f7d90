"""The LightningModule of every run: ChimeraNet + the phase that decides loss and trainable weights.

phase      loss                        trains
pretrain   the objective's loss        the head its objective trains and the backbone; the other
                                       head gets no gradient
whole      alpha*DC + (1-alpha)*MI     every weight
mask       MI                          only the last mask layer; the rest is frozen at its loaded value

``objective`` says what a pretraining learns by: an entry of ``transfersep.model.objectives``
(its loss, the head it trains, the checks of its settings); ``dc`` is the paper's deep clustering
on the stems' ideal binary masks. ``mixit`` and ``bootstrap_groups`` are the settings of the
objectives that have them, kept as hyperparameters so checkpoints rebuild as they were written.

It takes plain dict configs (not modules), saved as hyperparameters, so
``SeparationSystem.load_from_checkpoint(path)`` rebuilds a run's model on its own.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

from transfersep.audio import STFT, STFTConfig
from transfersep.model import ChimeraConfig, ChimeraNet, losses, objectives
from transfersep.model.autoclip import AutoClip
from transfersep.model.masking import separate_masks
from transfersep.model.schedule import plateau_patience, plateau_scheduler

PHASES = ("pretrain", "whole", "mask")
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
        entry = objectives.get(objective)  # ValueError naming the key and the choices
        if entry.check is not None:
            kept = entry.check(phase, list(source_names), {"mixit": mixit, "bootstrap_groups": bootstrap_groups})
            mixit = kept.get("mixit", mixit)
        if dc_weights not in ("magnitude", "none"):
            raise ValueError(f"loss.dc_weights must be 'magnitude' or 'none', got {dc_weights!r}")
        plateau_patience(plateau_patience_steps, val_every_n_steps)  # refuse a pair that does not fit
        self.save_hyperparameters()
        self.phase = phase
        self.source_names = list(source_names)
        self.model = ChimeraNet(ChimeraConfig(**{**model, "n_sources": len(source_names)}))
        self.stft = STFT(STFTConfig(**(stft or {})))
        self.autoclip = AutoClip(autoclip_percentile)
        self.apply_phase()

    # -- phase ---------------------------------------------------------------------------------
    def apply_phase(self) -> None:
        """Set requires_grad for the phase; ``configure_optimizers`` takes only trainable weights."""
        for name, p in self.model.named_parameters():
            if self.phase == "pretrain":  # the other head of the objective's gets no gradient
                frozen = (
                    "mask_head." if objectives.get(self.hparams.objective).trains == "embedding" else "embedding_head."
                )
                p.requires_grad_(not name.startswith(frozen))
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

    def compute_losses(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self.phase == "pretrain":
            return objectives.get(self.hparams.objective).loss(self, batch)
        return self.stem_losses(batch)

    def stem_losses(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The phase's losses on the stems' spectra: DC (pretraining), MI (mask), chimera (whole)."""
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
