"""How an evaluation runs its model: excerpts per forward pass and bf16 autocast on a GPU.

Scores depend on neither beyond rounding: a batch holds whole excerpts (the BLSTM and the
per-utterance normalisation see each excerpt alone), and under ``heads_autocast`` only the linear
heads run in bf16.
"""

from __future__ import annotations

import contextlib

import torch

# STFT frames per forward pass (``inference_batch``). The BLSTM's recurrent GEMMs (batch x 4H per
# frame) use a CPU well only with dozens of excerpts at once: on one core, a paper-size forward took
# 2.5x as long per excerpt in batches of 8 as in batches of 48 (the inference memory of 48 10-s
# excerpts is ~2 GB). The GPU gets more of them at once.
BATCH_FRAMES = {"cpu": 48 * 1251, "cuda": 96 * 1251}


def inference_batch(n_samples: int, device: str | torch.device = "cpu") -> int:
    """Excerpts of ``n_samples`` (16 kHz) per forward pass of an evaluation: about
    ``BATCH_FRAMES`` STFT frames (hop 128), at least one."""
    frames = BATCH_FRAMES.get(torch.device(device).type, BATCH_FRAMES["cpu"])
    return max(1, frames // (n_samples // 128 + 1))


def heads_autocast(device: str | torch.device, bf16: bool | None = None):
    """bf16 autocast for inference on ``device`` (None: on a GPU that supports bf16), else no-op.

    Under it only the model's heads run in bf16: ``ChimeraNet.features`` keeps the BLSTM in fp32 on
    GPU, ``torch.stft``/``istft`` are not autocast ops (they run in their fp32 inputs' type), the
    embedding is normalised in fp32 (``model.fast.sigmoid_unit_norm``) and SI-SDR is float64.
    """
    dev = torch.device(device)
    if bf16 is None:
        bf16 = dev.type == "cuda" and torch.cuda.is_bf16_supported()
    return torch.autocast(dev.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
