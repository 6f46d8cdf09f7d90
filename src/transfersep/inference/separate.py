"""Separate audio files with a trained model: one file per source, at the input's rate and length.

``separate_file("song.flac", model, "out")`` writes ``out/song/<source>.wav`` for every source
name of the model (``out/<input file name without extension>/<source>.<wav|flac>``). Input is any
WAV/FLAC/OGG/MP3/AIFF libsndfile reads, any sample rate and channel count: each channel is resampled to
16 kHz and separated on its own (stereo in gives stereo sources), and the sources are resampled back
to the input's rate and cut to its exact length, then carried into the band above the model's and
made to add up to the input (``inference.bands``; ``residual=True`` keeps what no source took as
``residual.<fmt>`` instead). ``transfersep separate`` passes
``<root>/<model name>`` as ``out`` (``separated/<model>/<track>/<source>.wav``, as demucs does), and
``transfersep.load_model(...).separate`` runs the same ``run_pipeline`` on arrays.

Long recordings stream through in bounded memory: the file is read in blocks, resampled with a
streaming soxr resampler (identical to one-shot resampling), cut into chunks of ``chunk_seconds``
overlapping by ``overlap_seconds``, several chunks (times channels) go through the network per
forward pass, and the chunk outputs are overlap-added with a sin^2/cos^2 crossfade whose weights sum
to one (divided by the weight sum, which also covers the last chunk, moved back to end at the end
of the file so that no chunk is zero-padded). Chunks start on the STFT's frame grid (multiples of
the hop): STFT-domain masking is not shift-invariant, and off-grid chunks differed from a
whole-file pass by up to 5 % of full scale where on-grid ones agree to > 70 dB. Each chunk is
normalised and run by the BLSTM on its own, so chunked output differs from a whole-file pass
only through the context each chunk sees.

Files are written into a hidden temporary folder inside ``out`` and moved into place when every
source is complete: a failure (unreadable input, corrupt model, decode error) leaves nothing behind.
An existing ``out/<name>/`` is updated file by file (each replaced atomically; other files stay).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from transfersep import audio
from transfersep.inference.chunking import _Stream
from transfersep.inference.inputs import check_input, pick_sources
from transfersep.inference.pipeline import (
    DEFAULT_CHUNK_SECONDS,
    DEFAULT_OVERLAP_SECONDS,
    TooShortError,
    check_length,
    output_names,
    run_pipeline,
)
from transfersep.inference.runner import prepare_model
from transfersep.model.package import LoadedModel

__all__ = ["TooShortError", "prepare_model", "recording_chunks", "run_pipeline", "separate_file"]

FORMATS = {"wav": ("WAV", "FLOAT"), "flac": ("FLAC", "PCM_24")}
LONG_INPUT_SECONDS = 30.0  # progress bar from this length on


def separate_file(
    in_path: str | os.PathLike,
    model: LoadedModel | str | os.PathLike,
    out_dir: str | os.PathLike,
    fmt: str = "wav",
    device: str | torch.device | None = None,
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
    overlap_seconds: float = DEFAULT_OVERLAP_SECONDS,
    progress: bool = True,
    batch_size: int | None = None,
    precision: str = "fp32",
    threads: int | None = None,
    sources: list[str] | None = None,
    clusters: int | None = None,
    residual: bool = False,
    raw: bool = False,
) -> list[Path]:
    """Separate one file into ``out_dir/<stem>/<source>.<fmt>``; returns the written paths.

    ``model``: a ``LoadedModel`` or a path ``load_model`` accepts; ``device`` None keeps a
    LoadedModel where it is (else auto); ``precision`` as in ``prepare_model`` (the CLI's default is
    auto; prepare the model once with ``prepare_model`` when separating many files). ``threads``:
    CPU worker threads (see ``batched_runner``; default ``default_threads()``). ``sources``: write
    only these (default: every source of the model). ``clusters``: write the K unlabelled clusters of
    the model's deep-clustering embeddings instead (``cluster_1`` … ``cluster_K``; k-means fitted once on
    the whole recording, ``model.clusters.cluster_model``), which needs no trained mask head: a
    pretraining model serves. The sources are whole-band and add up to the input (``bands``);
    ``residual`` writes what no source took as ``residual.<fmt>`` instead; ``raw`` writes the model's own
    band-limited outputs. Raises ``AudioReadError`` / ``ModelLoadError`` / ``TooShortError`` (nothing
    written) for an unreadable input or model, or an input under one STFT window.
    """
    in_path, out_dir = Path(in_path), Path(out_dir)
    if fmt not in FORMATS:
        raise ValueError(f"--format {fmt!r}: choose one of {sorted(FORMATS)}")
    info = check_input(in_path)  # header problems fail here, before anything is written
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out {out_dir} is a file; give a folder (it is created when missing)")
    if isinstance(model, LoadedModel) and device is None and precision == "fp32":
        lm = model
    else:
        lm = prepare_model(model, device, precision, clusters=bool(clusters))
    check_length(int(info.frames), int(info.samplerate), lm, str(in_path))
    if clusters:
        from transfersep.model.clusters import cluster_model

        lm = cluster_model(lm, recording_chunks(in_path, lm, chunk_seconds), clusters)
    residual = residual and not raw
    keep = pick_sources(lm.source_names, sources) + ([len(lm.source_names)] if residual else [])
    names = output_names(lm, residual)
    sr, ch, frames = int(info.samplerate), int(info.channels), int(info.frames)
    container, subtype = FORMATS[fmt]
    final = _out_dir_for(in_path, out_dir)
    created = [d for d in (out_dir, *out_dir.parents) if not d.exists()]
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{in_path.stem}.partial-", dir=out_dir))
    paths = [tmp / f"{names[k]}.{fmt}" for k in keep]
    writers: list[sf.SoundFile] = []
    bar = None
    clipped = 0
    try:
        writers = [
            sf.SoundFile(str(p), "w", samplerate=sr, channels=ch, format=container, subtype=subtype) for p in paths
        ]

        def write(out: np.ndarray) -> None:
            nonlocal clipped
            if subtype.startswith("PCM"):
                clipped += int(np.count_nonzero(np.abs(out) > 1.0))
                out = np.clip(out, -1.0, 1.0)
            for w, k in zip(writers, keep):
                w.write(out[:, k * ch : (k + 1) * ch])

        if progress and frames / sr >= LONG_INPUT_SECONDS:
            from tqdm import tqdm

            bar = tqdm(
                total=round(frames / sr, 1),
                unit="s",
                desc=in_path.name,
                leave=False,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s audio [{elapsed}<{remaining}]",
            )
        with sf.SoundFile(str(in_path)) as src:

            def read_native(n: int) -> np.ndarray:
                try:
                    return src.read(n, dtype="float32", always_2d=True)
                except Exception as e:
                    raise audio.AudioReadError(
                        f"cannot decode {in_path} after {src.tell()} frames: {e}. The file is truncated "
                        "or corrupt; re-download or re-export it."
                    ) from e

            try:
                run_pipeline(
                    read_native,
                    sr,
                    ch,
                    frames,
                    lm,
                    write,
                    chunk_seconds,
                    overlap_seconds,
                    batch_size,
                    threads,
                    bar.update if bar is not None else None,
                    residual=residual,
                    raw=raw,
                )
            except audio.AudioReadError as e:
                if str(in_path) in str(e):
                    raise
                raise audio.AudioReadError(f"{in_path}: {e}") from e
        for w in writers:
            w.close()
        if clipped:
            warnings.warn(
                f"{in_path}: {clipped} samples exceeded full scale and were clipped in the {fmt} output; "
                "use --format wav (32-bit float) to keep them",
                stacklevel=2,
            )
        return _commit(tmp, final, paths)
    except BaseException:
        for w in writers:
            if not w.closed:
                w.close()
        shutil.rmtree(tmp, ignore_errors=True)
        for d in created:  # only folders this call made, and only if empty: never someone's files
            try:
                d.rmdir()
            except OSError:
                pass
        raise
    finally:
        if bar is not None:
            bar.close()


def recording_chunks(in_path: Path, lm: LoadedModel, chunk_seconds: float = DEFAULT_CHUNK_SECONDS):
    """The recording at the model's rate as ``[channels, n]`` tensors of one chunk each (the last one
    shorter; a tail under one STFT window is left out), read and resampled block by block."""
    with sf.SoundFile(str(in_path)) as src:
        to_model = _Stream(src.samplerate, lm.sample_rate, src.channels)
        n = int(chunk_seconds * lm.sample_rate)
        buf = np.zeros((0, src.channels), np.float32)
        while True:
            x = src.read(max(4096, int(chunk_seconds * src.samplerate)), dtype="float32", always_2d=True)
            last = not len(x)
            buf = np.concatenate([buf, to_model(x, last=last)])
            while len(buf) >= n or (last and len(buf) >= lm.stft.cfg.n_fft):
                piece, buf = buf[:n], buf[n:]
                yield torch.from_numpy(np.ascontiguousarray(piece.T))
            if last:
                return


def _out_dir_for(in_path: Path, out_dir: Path) -> Path:
    return out_dir / in_path.stem


def _commit(tmp: Path, final: Path, paths: list[Path]) -> list[Path]:
    """Move a finished temp folder into place (each file atomically if the folder exists)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the result is an ordinary folder
    if not final.exists():
        os.replace(tmp, final)
    else:
        for p in paths:
            os.replace(p, final / p.name)
        shutil.rmtree(tmp, ignore_errors=True)
    return [final / p.name for p in paths]
