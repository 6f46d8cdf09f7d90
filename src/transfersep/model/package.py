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

Loading never unpickles: packages are read with safetensors, Lightning checkpoints with
``torch.load(weights_only=True)``. A file that is neither, lacks the metadata, was written by a newer
format version, fails the checksum, or whose weights do not fit its config raises
``ModelLoadError`` naming the file and what to do.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

import transfersep
from transfersep.audio import STFT, STFTConfig
from transfersep.files import FINAL_CKPT, LAST_CKPT, PACKAGE, STATUS, atomic_write, read_status
from transfersep.model import ChimeraConfig, ChimeraNet
from transfersep.model.masking import separate_masks

FORMAT_NAME = "transfersep-model"
FORMAT_VERSION = 1
META_KEY = "transfersep"
_ZIP_MAGIC = b"PK\x03\x04"  # torch.save files are zip archives


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


# -- export ------------------------------------------------------------------------------------
def _meta(
    model_cfg: dict,
    stft_cfg: STFTConfig,
    sources: list[str],
    phase: str | None,
    steps: int | None,
    run: dict | None,
    objective: str | None = None,
    records: dict | None = None,
) -> dict[str, Any]:
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


def _records(objective: str | None, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings the objective's entry says its package records, taken from ``settings``."""
    from transfersep.model.objectives import get

    return {k: settings.get(k) for k in get(objective).records}


def _from_source(src: Any) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(ChimeraNet state, meta without checksum) from a system, a LoadedModel, a run dir or a ckpt."""
    from transfersep.model.system import SeparationSystem

    if isinstance(src, SeparationSystem):
        trainer = getattr(src, "_trainer", None)
        steps = int(trainer.global_step) if trainer is not None else None
        hp = src.hparams
        return src.model.state_dict(), _meta(
            src.model.cfg.to_dict(),
            src.stft.cfg,
            src.source_names,
            src.phase,
            steps,
            None,
            hp.get("objective"),
            _records(hp.get("objective"), hp),
        )
    if isinstance(src, LoadedModel):
        m = src.meta
        if m.get("inference_precision") == "int8":
            raise ValueError("an int8 inference copy cannot be exported; export the fp32 model it was made from")
        return src.net.state_dict(), _meta(
            m["model"],
            src.stft.cfg,
            src.source_names,
            m.get("phase"),
            m.get("steps"),
            m.get("run"),
            src.objective,
            _records(src.objective, m),
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
    meta = _meta(
        dict(hp["model"]),
        STFTConfig(**(hp.get("stft") or {})),
        list(hp["source_names"]),
        hp.get("phase"),
        ckpt.get("global_step"),
        run,
        hp.get("objective"),
        _records(hp.get("objective"), hp),
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
