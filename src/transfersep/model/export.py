"""Writing a model package (format: ``transfersep.model.package``) from a trained system, a loaded
model, a run directory, a checkpoint or another package."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

import transfersep
from transfersep.files import PACKAGE, atomic_write
from transfersep.model.loading import load_model
from transfersep.model.package import META_KEY, LoadedModel, package_meta, recorded_settings, weights_digest


def _from_source(src: Any) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(ChimeraNet state, meta without checksum) from a system, a LoadedModel, a run dir or a ckpt."""
    from transfersep.model.system import SeparationSystem

    if isinstance(src, SeparationSystem):
        trainer = getattr(src, "_trainer", None)
        steps = int(trainer.global_step) if trainer is not None else None
        hp = src.hparams
        return src.model.state_dict(), package_meta(
            src.model.cfg.to_dict(),
            src.stft.cfg,
            src.source_names,
            src.phase,
            steps,
            None,
            hp.get("objective"),
            recorded_settings(hp.get("objective"), hp),
        )
    if isinstance(src, LoadedModel):
        m = src.meta
        if m.get("inference_precision") == "int8":
            raise ValueError("an int8 inference copy cannot be exported; export the fp32 model it was made from")
        return src.net.state_dict(), package_meta(
            m["model"],
            src.stft.cfg,
            src.source_names,
            m.get("phase"),
            m.get("steps"),
            m.get("run"),
            src.objective,
            recorded_settings(src.objective, m),
        )
    lm = load_model(src)
    return lm.net.state_dict(), {**lm.meta, "transfersep_version": transfersep.__version__}


def export_model(system_or_ckpt: Any, out_path: str | os.PathLike, extra: dict[str, Any] | None = None) -> Path:
    """Write one ``.safetensors`` package (atomically) and return its path.

    ``system_or_ckpt``: a ``SeparationSystem``, a ``LoadedModel``, or the path of a run directory,
    a Lightning ``.ckpt`` or a package. ``extra`` (JSON-able: grid point, run dir, scores...) is
    merged into the package's ``run`` entry.
    """
    from safetensors.torch import save_file

    out_path = Path(out_path)
    if out_path.suffix != ".safetensors":
        raise ValueError(f"{out_path}: a model package is a .safetensors file; name it e.g. {PACKAGE}")
    state, meta = _from_source(system_or_ckpt)
    state = {k: v.detach().to("cpu", torch.float32).contiguous().clone() for k, v in state.items()}
    meta["run"] = {**meta.get("run", {}), **(extra or {})}
    meta["weights_sha256"] = weights_digest(state)
    header = {"format": "pt", META_KEY: json.dumps(meta, sort_keys=True, default=str)}
    return atomic_write(out_path, lambda tmp: save_file(state, tmp, metadata=header))
