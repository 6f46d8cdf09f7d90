"""The "plain PyTorch version" of the training step that the fast paths are measured against.

Written the straightforward way a researcher would (and as nussl's and asteroid's Chimera
recipes do): ``nn.LSTM`` as is, ``argmax`` labels, sigmoid then ``F.normalize`` under autograd,
the low-rank DC loss differentiated by autograd (``model.losses.deep_clustering_loss_reference``), the
same Adam and AutoClip. It uses the same weights as ``SeparationSystem`` and computes the same
losses; tests/model/test_fast_paths.py checks that the two steps agree.
"""

from __future__ import annotations

import torch
import torch.nn.functional as nnf

from transfersep.model import losses
from transfersep.model.system import SeparationSystem


def plain_compute_losses(system: SeparationSystem, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``SeparationSystem.compute_losses(batch)`` without any fast path: {"loss", "dc"?, "mi"?} (scalars)."""
    net, hp = system.model, system.hparams
    mix_mag = system.stft(batch["mix"]).abs()  # [B, T, F]
    src_mag = system.stft(batch["sources"]).abs()  # [B, C, T, F]

    def features() -> torch.Tensor:
        return net.blstm(net.norm(torch.log(mix_mag + net.cfg.log_eps)))[0]  # [B, T, 2H]

    def masks(feats: torch.Tensor) -> torch.Tensor:
        b, t, _ = feats.shape
        m = torch.sigmoid(net.mask_head(feats)).view(b, t, net.cfg.n_sources, net.cfg.n_bins)
        return m.permute(0, 2, 1, 3)  # [B, C, T, F]

    out: dict[str, torch.Tensor] = {}
    if system.phase == "mask":
        with torch.no_grad():
            feats = features()
        out["mi"] = out["loss"] = losses.mask_inference_loss(masks(feats), mix_mag, src_mag)
        return out
    feats = features()
    b, t, _ = feats.shape
    emb = torch.sigmoid(net.embedding_head(feats)).view(b, t, net.cfg.n_bins, net.cfg.embedding_dim)
    emb = nnf.normalize(emb, p=2, dim=-1)
    labels = src_mag.argmax(dim=1)
    weights = mix_mag if hp.dc_weights == "magnitude" else None
    out["dc"] = losses.deep_clustering_loss_reference(emb, labels, len(system.source_names), weights)
    if system.phase == "pretrain":
        out["loss"] = out["dc"]
        return out
    out["mi"] = losses.mask_inference_loss(masks(feats), mix_mag, src_mag)
    out["loss"] = losses.chimera_loss(out["dc"], out["mi"], hp.alpha)
    return out
