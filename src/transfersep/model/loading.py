"""Reading a model file by its content: a package (``transfersep.model.package``), a Lightning
checkpoint or a run directory; and the sizes a file records, read without building the network."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

import transfersep
from transfersep.audio import STFT, STFTConfig
from transfersep.files import FINAL_CKPT, LAST_CKPT, PACKAGE, STATUS, read_status
from transfersep.model import ChimeraConfig, ChimeraNet
from transfersep.model.package import (
    FORMAT_NAME,
    FORMAT_VERSION,
    META_KEY,
    LoadedModel,
    ModelLoadError,
    package_meta,
    recorded_settings,
    weights_digest,
)

_ZIP_MAGIC = b"PK\x03\x04"  # torch.save files are zip archives


# -- the sizes a file records ------------------------------------------------------------------
# the model keys that fix the network's shapes and what its weights mean: a network built from a
# file must take these from the file (dropout and the speed switches may differ)
SIZE_KEYS = ("n_bins", "hidden_size", "num_layers", "embedding_dim", "log_eps")


def _head(path: str | os.PathLike) -> tuple[Path, bytes]:
    """The model file ``path`` stands for (a run directory's package or checkpoint) and its first 16
    bytes, which tell a checkpoint (a zip archive) from a package (a JSON header)."""
    path = _resolve(Path(path))
    try:
        with open(path, "rb") as f:
            return path, f.read(16)
    except OSError as e:
        raise ModelLoadError(f"{path}: cannot open ({e}); check the path and its permissions") from e


def recorded_model(path: str | os.PathLike) -> dict[str, Any]:
    """The model config a package header (or a checkpoint's hyper-parameters) records, read
    without building the network; ``ModelLoadError`` when the file is not a readable model."""
    path, head = _head(path)
    if head.startswith(_ZIP_MAGIC):
        return dict(_read_checkpoint(path, mmap=True)[1]["model"])  # mapped: the tensors are not read
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            header = f.metadata() or {}
        meta = json.loads(header[META_KEY])
        return dict(meta["model"])
    except (SafetensorError, OSError, ValueError, RuntimeError, KeyError, TypeError) as e:
        raise ModelLoadError(
            f"{path}: no readable transfersep model header ({type(e).__name__}: {e}); pass a package "
            "written by `transfersep export` or a run's final.ckpt"
        ) from e


def size_conflicts(recorded: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(key, recorded, wanted)`` for every size key on which a run's ``model`` config contradicts
    the one a file records (``SIZE_KEYS``; a key either side lacks is no contradiction)."""
    out = []
    for k in SIZE_KEYS:
        if k in recorded and k in wanted and recorded[k] is not None and wanted[k] is not None:
            if float(recorded[k]) != float(wanted[k]):
                out.append((k, recorded[k], wanted[k]))
    return out


# -- load --------------------------------------------------------------------------------------
def _resolve(path: Path) -> Path:
    if path.is_dir():
        for name in (PACKAGE, FINAL_CKPT):
            if (path / name).is_file():
                return path / name
        raise ModelLoadError(
            f"{path}: a directory without {PACKAGE} or {FINAL_CKPT}; pass a finished run "
            "directory, a .safetensors package or a .ckpt file (an unfinished run's "
            f"{LAST_CKPT} can be given explicitly)"
        )
    if not path.is_file():
        raise ModelLoadError(f"{path}: no such model file; pass a .safetensors package, a .ckpt or a run directory")
    return path


def _build(path: Path, meta: dict[str, Any], state: Mapping[str, torch.Tensor], device: Any) -> LoadedModel:
    sources = list(meta["source_names"])
    # fields this ChimeraConfig lacks are dropped: speed switches of another version change no
    # weight, and anything architectural that is lost makes the strict weight load below fail
    known = {f.name for f in dataclasses.fields(ChimeraConfig)}
    try:
        cfg = ChimeraConfig(**{**{k: v for k, v in meta["model"].items() if k in known}, "n_sources": len(sources)})
        stft_cfg = STFTConfig(**{k: meta["stft"][k] for k in ("n_fft", "hop_length", "sample_rate")})
    except (TypeError, KeyError) as e:
        raise ModelLoadError(
            f"{path}: model/STFT config in the file is not understood ({e}); it was written by "
            "another transfersep version: re-export it with this one"
        ) from e
    net = ChimeraNet(cfg)
    try:
        net.load_state_dict(dict(state), strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[0:3]
        raise ModelLoadError(
            f"{path}: the weights do not fit the model config stored with them ({' '.join(first)}); "
            "the file is damaged or was edited: re-export it from its run"
        ) from e
    lm = LoadedModel(net.eval(), STFT(stft_cfg), sources, meta, path)
    return lm.to(device)


def _load_package(path: Path, device: Any) -> LoadedModel:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            header = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise ModelLoadError(
            f"{path}: not a readable safetensors file ({e}); the file is truncated or corrupt: "
            "re-download it or re-export it with `transfersep export RUN_DIR`"
        ) from e
    if META_KEY not in header:
        raise ModelLoadError(
            f"{path}: a safetensors file without transfersep metadata, so not a transfersep model "
            f"package; export one with `transfersep export RUN_DIR --out {PACKAGE}`"
        )
    try:
        meta = json.loads(header[META_KEY])
    except json.JSONDecodeError as e:
        raise ModelLoadError(f"{path}: the transfersep metadata is not valid JSON ({e}); re-export the model") from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise ModelLoadError(
            f"{path}: metadata format is {meta.get('format') if isinstance(meta, dict) else meta!r}, "
            f"expected {FORMAT_NAME!r}; not a transfersep model package"
        )
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelLoadError(
            f"{path}: package format version {version!r}, this transfersep "
            f"({transfersep.__version__}) reads up to {FORMAT_VERSION}; upgrade transfersep"
        )
    if meta.get("weights_sha256") != weights_digest(state):
        raise ModelLoadError(
            f"{path}: weights checksum mismatch, the file is corrupt; re-download it or re-export it from its run"
        )
    return _build(path, meta, state, device)


def _load_checkpoint(path: Path, device: Any) -> LoadedModel:
    ckpt, hp, sd = _read_checkpoint(path)
    state = {k[len("model.") :]: v for k, v in sd.items() if k.startswith("model.")}
    run = {"checkpoint": str(path)}
    if path.name == FINAL_CKPT and (path.parent / STATUS).is_file():
        try:
            st = read_status(path.parent)
        except OSError:  # unreadable: the checkpoint alone says what it is
            st = None
        if st is not None:
            run.update(grid_point=st.get("grid_point"), run_dir=str(path.parent), study=st.get("study"))
    meta = package_meta(
        dict(hp["model"]),
        STFTConfig(**(hp.get("stft") or {})),
        list(hp["source_names"]),
        hp.get("phase"),
        ckpt.get("global_step"),
        run,
        hp.get("objective"),
        recorded_settings(hp.get("objective"), hp),
    )
    meta["model"] = {**meta["model"], "n_sources": len(hp["source_names"])}
    return _build(path, meta, state, device)


def _read_checkpoint(path: Path, mmap: bool = False) -> tuple[dict, dict, dict]:
    """(checkpoint, hyper_parameters, state_dict) of a transfersep training checkpoint."""
    import pickle

    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as e:
        raise ModelLoadError(
            f"{path}: refused to load: the checkpoint holds objects other than tensors and plain "
            "data, and loading it would run arbitrary code. Load only checkpoints you trust "
            "with transfersep's own tools, or export a package from the run"
        ) from e
    except (RuntimeError, OSError, EOFError, ValueError) as e:
        raise ModelLoadError(
            f"{path}: cannot read the checkpoint ({str(e).splitlines()[0]}); it is truncated or "
            f"corrupt: use {LAST_CKPT} of the run or train again"
        ) from e
    hp = ckpt.get("hyper_parameters") if isinstance(ckpt, dict) else None
    sd = ckpt.get("state_dict") if isinstance(ckpt, dict) else None
    if not isinstance(hp, dict) or not isinstance(sd, dict) or "model" not in hp or "source_names" not in hp:
        raise ModelLoadError(
            f"{path}: not a transfersep training checkpoint (no hyper_parameters.model / "
            f"source_names / state_dict); pass a {FINAL_CKPT} of a transfersep run or a package"
        )
    return ckpt, hp, sd


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> LoadedModel:
    """Load a package (``.safetensors``), a Lightning checkpoint or a run directory onto ``device``.

    The kind is told from the file's content, not its name. ``load_model(p).net`` is a plain
    ChimeraNet; its ``state_dict()`` feeds ``ChimeraNet.load_flexible`` for fine-tuning.
    """
    path, head = _head(path)
    if head.startswith(_ZIP_MAGIC):
        return _load_checkpoint(path, device)
    if len(head) >= 9 and head[8:9] == b"{":
        return _load_package(path, device)
    raise ModelLoadError(
        f"{path}: neither a transfersep model package (.safetensors) nor a Lightning checkpoint "
        "(.ckpt); the file is empty, corrupt or of another kind"
    )
