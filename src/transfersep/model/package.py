"""Trained models as self-describing packages: one ``.safetensors`` file, loadable by path alone.

A package holds the ChimeraNet weights (float32 tensors, keys as in ``ChimeraNet.state_dict()``)
and, in the safetensors header metadata, two string entries:

``format``       ``"pt"`` (the safetensors convention for torch tensors)
``transfersep``  a JSON object::

    {"format": "transfersep-model", "format_version": 1, "transfersep_version": "0.1.0",
     "arch": "ChimeraNet", "model": {ChimeraConfig fields}, "stft": {"n_fft", "hop_length",
     "sample_rate", "window": "sqrt_hann", "center": true}, "sample_rate": 16000,
     "source_names": [...], "phase": "whole", "objective": "dc", "steps": 2000, "created": ISO-8601 UTC,
     "weights_sha256": hex digest over the tensors (name, dtype, shape, bytes in name order),
     "run": {grid_point, run_dir, checkpoint, ... whatever the exporter passed as ``extra``}}

``objective`` is what the model's own training learned by: ``dc`` for the paper's pretraining and
every fine-tune and baseline, else the pretraining's objective (``transfersep.model.objectives``),
with the settings its entry ``records`` beside it (a MixIT pretraining: ``"mixit": {"outputs",
"snr_max_db", ...}``, and ``source_names`` are its M outputs ``output1 .. outputM``, which
``load_model`` gives and ``separate`` writes, one file per output). A package written before the
field existed is a ``dc`` model (``LoadedModel.objective``).

This module holds the format (its header, ``weights_digest``, ``ModelLoadError``) and the loaded
model; ``transfersep.model.export`` writes packages and ``transfersep.model.loading`` reads them
and training checkpoints. Loading never unpickles: packages are read with safetensors, Lightning
checkpoints with ``torch.load(weights_only=True)``. A file that is neither, lacks the metadata, was
written by a newer format version, fails the checksum, or whose weights do not fit its config
raises ``ModelLoadError`` naming the file and what to do.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

import transfersep
from transfersep.audio import STFT, STFTConfig
from transfersep.model import ChimeraNet
from transfersep.model.masking import separate_masks

FORMAT_NAME = "transfersep-model"
FORMAT_VERSION = 1
META_KEY = "transfersep"


class ModelLoadError(ValueError):
    """A model file cannot be used; the message names the file and what to do."""


def weights_digest(state: Mapping[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for k in sorted(state):
        t = state[k].detach().cpu().contiguous().reshape(-1)
        h.update(f"{k}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


@dataclass
class LoadedModel:
    """A ready-to-run model: ``net`` (eval mode), its ``stft``, ``source_names`` and ``meta``."""

    net: ChimeraNet
    stft: STFT
    source_names: list[str]
    meta: dict[str, Any]
    path: Path
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def sample_rate(self) -> int:
        return self.stft.cfg.sample_rate

    @property
    def objective(self) -> str:
        """What the model's training learned by (``dc``, ``mixit``...); ``dc`` for files that predate the field."""
        return str(self.meta.get("objective") or "dc")

    def to(self, device: str | torch.device) -> LoadedModel:
        self.device = torch.device(device)
        self.net.to(self.device)
        self.stft.to(self.device)
        return self

    def int8(self) -> LoadedModel:
        """A CPU copy with int8 dynamic quantization of the BLSTM and the linear heads.

        About 2.5-3x faster on CPU (fbgemm int8 kernels). The waveforms stayed within 52-63 dB
        of the fp32 ones for a trained tiny model and 81 dB for a random paper-size one; one scale
        per weight tensor could do worse on a model with outlier weights, which is why
        ``inference.runner.prepare_model(precision="auto")`` checks the agreement before using it. Uses
        ``torch.ao.quantization.quantize_dynamic`` (deprecated upstream in favour of torchao,
        which has no LSTM kernels); raises ``RuntimeError`` where this torch lacks it.
        """
        import copy
        import warnings

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                from torch.ao.quantization import quantize_dynamic

                net = quantize_dynamic(
                    copy.deepcopy(self.net).cpu().eval(), {torch.nn.LSTM, torch.nn.Linear}, dtype=torch.qint8
                )
        except (ImportError, AttributeError, RuntimeError) as e:
            raise RuntimeError(
                f"int8 inference is not available with torch {torch.__version__} ({e}); use --precision fp32"
            ) from e
        meta = {**self.meta, "inference_precision": "int8"}
        return LoadedModel(net, STFT(self.stft.cfg), self.source_names, meta, self.path, torch.device("cpu"))

    @torch.inference_mode()
    def separate(self, mix: torch.Tensor) -> torch.Tensor:
        """Waveform estimates [B, C, N] of 16 kHz mono mixtures [B, N] (any device; output on ours)."""
        return separate_masks(self.net, self.stft, mix.to(self.device, torch.float32))


# -- the header ------------------------------------------------------------------------------
def package_meta(
    model_cfg: dict,
    stft_cfg: STFTConfig,
    sources: list[str],
    phase: str | None,
    steps: int | None,
    run: dict | None,
    objective: str | None = None,
    records: dict | None = None,
) -> dict[str, Any]:
    """A package's ``transfersep`` header entry (module doc), less the weights checksum."""
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "transfersep_version": transfersep.__version__,
        "torch_version": torch.__version__.split("+")[0],
        "arch": "ChimeraNet",
        "model": model_cfg,
        "stft": {
            "n_fft": stft_cfg.n_fft,
            "hop_length": stft_cfg.hop_length,
            "sample_rate": stft_cfg.sample_rate,
            "window": "sqrt_hann",
            "center": True,
        },
        "sample_rate": stft_cfg.sample_rate,
        "source_names": list(sources),
        "phase": phase,
        "objective": objective or "dc",
        **{k: dict(v) if isinstance(v, Mapping) else v for k, v in (records or {}).items() if v},
        "steps": steps,
        "created": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "run": run or {},
    }


def recorded_settings(objective: str | None, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings the objective's entry says its package records, taken from ``settings``."""
    from transfersep.model.objectives import get

    return {k: settings.get(k) for k in get(objective).records}
