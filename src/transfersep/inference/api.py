"""The Python API: ``transfersep.load_model(path)`` and ``model.separate(waveform, sample_rate)``.

    import soundfile as sf, transfersep
    model = transfersep.load_model("runs/paper/finetune/slakh-none-whole-bach10")  # or a .safetensors
    x, sr = sf.read("song.flac", dtype="float32", always_2d=True)               # [samples, channels]
    stems = model.separate(x, sr)                                                # {"violin": [samples, channels], ...}

``separate`` takes a waveform at any sample rate and channel count — ``[samples]`` (mono),
``[channels, samples]`` (as torchaudio loads it) or ``[samples, channels]`` (as soundfile reads it),
a NumPy array or a torch tensor — and returns ``{source: waveform}`` in the same shape, layout, type,
dtype, scale and sample rate (int16 in: int16 out at int16 scale).
Of a 2-D waveform the shorter axis holds the channels (no recording has more
channels than samples); a square one is refused, being both. It runs the code of ``transfersep separate``
(``inference.pipeline.run_pipeline``: resampling to the model's 16 kHz, each channel on its own, 4-s chunks
with 0.5-s crossfades on the STFT frame grid, back to the input's rate and exact length, whole-band
sources that add up to the input: ``inference.bands``), so for
the same model, precision and input it returns what the command writes (float32 WAV).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from transfersep.files import FINAL_CKPT, LAST_CKPT, PACKAGE, read_status
from transfersep.model.package import LoadedModel


def _run_dir(p: Path) -> Path | None:
    """The run directory a model path stands for (the directory, or the folder of its package or
    checkpoint); None for a file of another name."""
    if p.is_dir():
        return p
    if p.name in (PACKAGE, FINAL_CKPT):
        return p.parent
    if p.parts[-2:] == Path(LAST_CKPT).parts:
        return p.parent.parent
    return None


def model_name(path: str | os.PathLike) -> str:
    """The name of a model for output folders, unique per study and grid point.

    A run's model (its run directory, or ``model.safetensors``, ``final.ckpt`` or
    ``checkpoints/last.ckpt`` inside it) is ``<study>-<stage>-<grid point>``
    (``paper-baseline-bach10``, ``demo-finetune-slakh-none-whole-bach10``): the grid point alone
    repeats across studies, and a baseline's is only its downstream set. A run directory outside a
    study's layout, or a ``model.safetensors`` anywhere else, is named by its folder (every package
    an export writes has that file name); any other package by its file stem (``bach10.safetensors``:
    ``bach10``). Two models that still share a name never share a folder: see ``claim_folder``."""
    p = Path(path).expanduser().resolve()
    run_dir = _run_dir(p)
    if run_dir is None:
        return p.stem
    try:  # a study's run records its stage (the folder above it) and its study
        st = read_status(run_dir)
        stage, study = st["grid_point"]["stage"], st.get("study")
    except (OSError, ValueError, TypeError, KeyError):
        stage = study = None
    if stage != run_dir.parent.name:  # not laid out as <runs>/<study>/<stage>/<grid point>/
        return run_dir.name
    study = str(study or run_dir.parent.parent.name)
    return f"{study}-{run_dir.parent.name}-{run_dir.name}"


OWNER = ".transfersep-model.json"  # in separated/<model name>/: which model writes there


def model_origin(path: str | os.PathLike) -> str:
    """What a model path stands for: its run directory (a run's directory, package and checkpoints
    are one model) or the file itself, resolved."""
    p = Path(path).expanduser().resolve()
    return str(_run_dir(p) or p)


def claim_folder(folder: Path, model_path: str | os.PathLike, write: bool = True) -> None:
    """Record that ``folder`` holds the outputs of ``model_path`` (``write=False``: only check);
    ``ValueError`` when another model's outputs are there already (two packages both named
    ``model.safetensors`` in folders of the same name, say), so that one never silently replaces the
    other's files."""
    origin = model_origin(model_path)
    owner = folder / OWNER
    try:
        previous = json.loads(owner.read_text()).get("model")
    except (OSError, ValueError, AttributeError):
        previous = None
    if previous and previous != origin:
        raise ValueError(
            f"{folder} holds the outputs of another model ({previous}); {origin} would replace them. "
            "Give another --out, or rename the model file"
        )
    if write and previous != origin and folder.is_dir():
        owner.write_text(json.dumps({"model": origin}) + "\n")


@dataclass
class Separator:
    """A trained model ready to separate recordings (see the module docstring)."""

    model: LoadedModel
    name: str
    options: dict[str, Any] = field(default_factory=dict)  # chunk_seconds, overlap_seconds, batch_size, threads, raw

    @property
    def source_names(self) -> list[str]:
        return list(self.model.source_names)

    @property
    def sample_rate(self) -> int:
        """The model's own rate (inputs at any rate are resampled to it and back)."""
        return self.model.sample_rate

    @property
    def meta(self) -> dict[str, Any]:
        return self.model.meta

    def separate(
        self,
        waveform: np.ndarray | torch.Tensor,
        sample_rate: int,
        sources: list[str] | None = None,
        residual: bool = False,
    ) -> dict[str, np.ndarray | torch.Tensor]:
        """``{source: estimate}`` of ``waveform`` ([samples], [channels, samples] or [samples, channels]) at
        its rate, shape, layout, dtype and scale (int16 in: int16 out at int16 scale). The sources are
        whole-band and add up to the input; ``residual`` adds what no source took as ``"residual"``
        instead. ``ValueError`` for an input under one STFT window of the model (32 ms)."""
        from transfersep.inference.inputs import pick_sources
        from transfersep.inference.pipeline import check_length, output_names, run_pipeline

        is_tensor = isinstance(waveform, torch.Tensor)
        arr = waveform.detach().cpu().numpy() if is_tensor else np.asarray(waveform)
        dtype = arr.dtype
        # integer PCM is read at its full scale, as soundfile reads int16 files as float
        scale = float(np.iinfo(dtype).max) + 1 if np.issubdtype(dtype, np.integer) else 1.0
        x = arr.astype(np.float32) / np.float32(scale)
        if x.ndim not in (1, 2):
            raise ValueError(
                f"waveform of shape {tuple(x.shape)}: give [samples], [channels, samples] or [samples, channels]"
            )
        if x.ndim == 2 and x.shape[0] == x.shape[1] and x.shape[0] > 1:
            raise ValueError(
                f"waveform of shape {tuple(x.shape)}: as many channels as samples, so the layout is unclear; "
                "give at least as many samples as channels"
            )
        if int(sample_rate) <= 0:
            raise ValueError(f"sample_rate={sample_rate}: must be a positive number of samples per second")
        # the shorter axis holds the channels: [channels, samples] (torchaudio) or [samples, channels] (soundfile)
        samples_first = x.ndim == 2 and x.shape[0] > x.shape[1]
        frames_first = np.ascontiguousarray(x if samples_first else (x[None] if x.ndim == 1 else x).T)  # [n, ch]
        n, ch = frames_first.shape
        if n == 0:
            raise ValueError("waveform holds no samples; nothing to separate")
        check_length(n, int(sample_rate), self.model, "the waveform")
        residual = residual and not self.options.get("raw")
        names = output_names(self.model, residual)
        keep = pick_sources(self.source_names, sources) + ([len(names) - 1] if residual else [])
        pos = 0

        def read_native(k: int) -> np.ndarray:
            nonlocal pos
            block = frames_first[pos : pos + k]
            pos += len(block)
            return block

        out: list[np.ndarray] = []
        run_pipeline(read_native, int(sample_rate), ch, n, self.model, out.append, residual=residual, **self.options)
        y = np.concatenate(out)[:n]  # [n, K*ch], output-major columns
        result = {}
        for k in keep:
            est = np.ascontiguousarray(y[:, k * ch : (k + 1) * ch] if samples_first else y[:, k * ch : (k + 1) * ch].T)
            est = _as_input(est[0] if x.ndim == 1 else est, dtype, scale)  # the input's layout: [n], [ch, n] or [n, ch]
            result[names[k]] = torch.from_numpy(est).to(waveform.device) if is_tensor else est
        return result


def _as_input(y: np.ndarray, dtype: np.dtype, scale: float) -> np.ndarray:
    """An output in the input's dtype and scale (integers rounded and clipped to their range)."""
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.rint(y.astype(np.float64) * scale), info.min, info.max).astype(dtype)
    return np.ascontiguousarray(y, dtype=dtype if np.issubdtype(dtype, np.floating) else np.float32)


def load_model(path: str | os.PathLike, device: str = "auto", precision: str = "auto", **options: Any) -> Separator:
    """A model package (``.safetensors``), a Lightning checkpoint or a finished run directory, ready
    to separate. ``device``/``precision`` as ``transfersep separate`` (auto: CUDA when present;
    int8 on CPU when it agrees with fp32); ``options``: ``chunk_seconds``, ``overlap_seconds``,
    ``batch_size``, ``threads``, ``raw`` of ``inference.pipeline.run_pipeline``."""
    from transfersep.inference.runner import prepare_model

    return Separator(prepare_model(path, device, precision), model_name(path), options)
