"""ChimeraNet (Luo et al., ICASSP 2017), as used by Bugler, Pardo & Seetharaman.

A BLSTM stack over log-magnitude frames with two heads: a deep-clustering embedding (a unit-norm
D-vector per time-frequency bin) and a mask-inference head (one mask in [0, 1] per source and bin).
Pretraining trains the embedding only; a fine-tune whose source count differs starts from a fresh
mask head (``load_flexible``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from transfersep.model.fast import blstm_parallel, sigmoid_unit_norm

MASK_HEAD_PREFIX = "mask_head."


@dataclass
class ChimeraConfig:
    n_bins: int = 257  # 512-point STFT at 16 kHz
    hidden_size: int = 500  # per direction
    num_layers: int = 4
    embedding_dim: int = 20
    n_sources: int = 2
    dropout: float = 0.0  # between LSTM layers; the paper gives none
    log_eps: float = 1e-6
    # speed only, the math is the same (transfersep.model.fast; tests/model/test_fast_paths.py):
    fast_paths: bool = True  # fused sigmoid + unit norm of the embedding (one saved tensor, not two)
    cpu_parallel_directions: bool = True  # on CPU with >= 2 threads, the two BLSTM directions run concurrently

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _cpu_bf16_rnn() -> bool:
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


class InputNorm(nn.Module):
    """Per-utterance standardisation of the log-magnitude, then a learnable per-bin affine map.

    Chosen over BatchNorm because it keeps no running statistics: a frozen backbone (mask phase)
    is then truly frozen, and a model behaves the same in train and eval mode.
    """

    def __init__(self, n_bins: int):
        super().__init__()
        self.gain = nn.Parameter(torch.ones(n_bins))
        self.bias = nn.Parameter(torch.zeros(n_bins))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, F]
        mean = x.mean(dim=(1, 2), keepdim=True)
        std = x.std(dim=(1, 2), keepdim=True).clamp_min(1e-5)
        return (x - mean) / std * self.gain + self.bias


class ChimeraNet(nn.Module):
    """``forward(mag [B, T, F]) -> (embedding [B, T, F, D] unit-norm, masks [B, C, T, F] in [0, 1])``
    (``embedding=False`` / ``masks=False`` leave a head out)."""

    def __init__(self, cfg: ChimeraConfig):
        super().__init__()
        self.cfg = cfg
        self.norm = InputNorm(cfg.n_bins)
        self.blstm = nn.LSTM(
            cfg.n_bins,
            cfg.hidden_size,
            num_layers=cfg.num_layers,
            batch_first=True,
            bidirectional=True,
            dropout=cfg.dropout if cfg.num_layers > 1 else 0.0,
        )
        self.embedding_head = nn.Linear(2 * cfg.hidden_size, cfg.n_bins * cfg.embedding_dim)
        self.mask_head = nn.Linear(2 * cfg.hidden_size, cfg.n_bins * cfg.n_sources)

    def features(self, mag: torch.Tensor) -> torch.Tensor:
        """The shared BLSTM features [B, T, 2H] of a magnitude spectrogram [B, T, F].

        Under bf16 autocast the BLSTM stack runs in fp32 (the heads still run in bf16):
        * CUDA: PyTorch's autocast wrapper of cuDNN RNNs casts to fp16 whatever the autocast dtype,
          and bf16-mixed training has no loss scaler, so small gradients would underflow; cuDNN's
          fp32 RNN uses TF32 tensor cores (``torch.backends.cudnn.allow_tf32``, on by default).
        * CPU without oneDNN bf16 RNNs (no AVX512-BF16/AMX): oneDNN cannot build the primitive.
        fp16 autocast (16-mixed, which scales the loss) is left to PyTorch.
        """
        x = self.norm(torch.log(mag + self.cfg.log_eps))
        dev = x.device.type
        if (
            torch.is_autocast_enabled(dev)
            and torch.get_autocast_dtype(dev) == torch.bfloat16
            and (dev == "cuda" or (dev == "cpu" and not _cpu_bf16_rnn()))
        ):
            with torch.autocast(dev, enabled=False):
                return self._blstm(x.float())
        return self._blstm(x)

    def _blstm(self, x: torch.Tensor) -> torch.Tensor:
        # exact nn.LSTM only: an int8 (dynamically quantised) stack for inference keeps its own path
        if (
            self.cfg.cpu_parallel_directions
            and x.device.type == "cpu"
            and type(self.blstm) is nn.LSTM
            and torch.get_num_threads() >= 2
        ):
            return blstm_parallel(self.blstm, x)
        out, _ = self.blstm(x)
        return out

    def embed(self, feats: torch.Tensor) -> torch.Tensor:
        """Unit-norm embeddings [B, T, F, D] (fp32) of features [B, T, 2H]."""
        b, t, _ = feats.shape
        z = self.embedding_head(feats).view(b, t, self.cfg.n_bins, self.cfg.embedding_dim)
        if self.cfg.fast_paths:
            return sigmoid_unit_norm(z)
        # sigmoid then unit norm, as nussl's ChimeraNet recipe does
        return nn.functional.normalize(torch.sigmoid(z), p=2, dim=-1)

    def mask(self, feats: torch.Tensor) -> torch.Tensor:
        b, t, _ = feats.shape
        m = torch.sigmoid(self.mask_head(feats)).view(b, t, self.cfg.n_sources, self.cfg.n_bins)
        return m.permute(0, 2, 1, 3)  # [B, C, T, F]

    def forward(
        self, mag: torch.Tensor, embedding: bool = True, masks: bool = True
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """``(embedding, masks)`` of ``mag [B, T, F]``; a head switched off is not computed (None): scoring
        masks needs no embedding head (a fifth of the work), clustering needs no mask head."""
        feats = self.features(mag)
        return (self.embed(feats) if embedding else None), (self.mask(feats) if masks else None)

    def load_flexible(self, state: Mapping[str, torch.Tensor], keep_mask_head: bool = True) -> list[str]:
        """Load weights; the mask head is taken only if ``keep_mask_head`` and its shape matches.

        Anything else that does not match is an error (a different backbone size is a user
        mistake, not something to paper over). Returns the keys that were not loaded.
        """
        own = self.state_dict()
        body = {k: v for k, v in state.items() if not k.startswith(MASK_HEAD_PREFIX)}
        head = {k: v for k, v in state.items() if k.startswith(MASK_HEAD_PREFIX)}
        missing = sorted(set(own) - set(state))
        missing_body = [k for k in missing if not k.startswith(MASK_HEAD_PREFIX)]
        unexpected = sorted(set(state) - set(own))
        bad = [k for k, v in body.items() if k in own and own[k].shape != v.shape]
        if missing_body or unexpected or bad:
            raise ValueError(
                "checkpoint does not fit this ChimeraNet "
                f"(missing {missing_body}, unexpected {unexpected}, shape mismatch {bad}); "
                "the model config (hidden_size, num_layers, embedding_dim) must match the checkpoint's"
            )
        take_head = keep_mask_head and all(k in own and own[k].shape == v.shape for k, v in head.items()) and head
        self.load_state_dict({**body, **(head if take_head else {})}, strict=False)
        return [] if take_head else sorted(k for k in own if k.startswith(MASK_HEAD_PREFIX))
