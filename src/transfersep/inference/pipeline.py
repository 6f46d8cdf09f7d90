"""The separation of one recording, shared by files (``separate.separate_file``) and arrays
(``transfersep.load_model(...).separate``): ``run_pipeline``.

The input is resampled to the model's rate, cut into chunks on the STFT frame grid, separated,
overlap-added (``chunking.separate_stream``) and resampled back; by default the sources are then
carried into the band above the model's and made to add up to the input (``bands``). Memory stays
bounded: the input waits in a buffer only until the outputs of its samples come back.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from transfersep import audio
from transfersep.inference.bands import channels_per_source, combine, with_shares
from transfersep.inference.chunking import _Stream, separate_stream
from transfersep.inference.runner import DEFAULT_BATCH, batched_runner, default_threads
from transfersep.model.package import LoadedModel

DEFAULT_CHUNK_SECONDS = 4.0
DEFAULT_OVERLAP_SECONDS = 0.5


class TooShortError(ValueError):
    """An input shorter than one STFT window of the model: nothing to separate."""


def min_frames(lm: LoadedModel, sr: int) -> int:
    """The shortest input at ``sr`` the model separates: one STFT window at its rate (32 ms)."""
    return math.ceil(lm.stft.cfg.n_fft * sr / lm.sample_rate)


def check_length(frames: int, sr: int, lm: LoadedModel, what: str = "the input") -> None:
    """``TooShortError`` naming the minimum when ``frames`` at ``sr`` is too short to separate."""
    need = min_frames(lm, sr)
    if frames < need:
        raise TooShortError(
            f"{what} is {frames} samples ({1000 * frames / sr:.1f} ms) long; separation needs at least "
            f"{need} samples at {sr} Hz ({1000 * lm.stft.cfg.n_fft / lm.sample_rate:.0f} ms, one STFT window "
            "of the model)"
        )


def output_names(lm: LoadedModel, residual: bool) -> list[str]:
    """The outputs ``run_pipeline`` writes, in column order."""
    return [*lm.source_names, *(["residual"] if residual else [])]


def run_pipeline(
    read_native: Callable[[int], np.ndarray],
    sr: int,
    ch: int,
    frames: int,
    lm: LoadedModel,
    write: Callable[[np.ndarray], None],
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
    overlap_seconds: float = DEFAULT_OVERLAP_SECONDS,
    batch_size: int | None = None,
    threads: int | None = None,
    on_progress: Callable[[float], None] | None = None,
    residual: bool = False,
    raw: bool = False,
) -> int:
    """Separate one recording; returns the number of frames written.

    ``read_native(n)`` gives the next block [<=n, ch] float32 at ``sr`` (empty at the end);
    ``write`` receives output blocks [n, K*ch] at ``sr`` (output-major columns, ``output_names``), ``frames``
    in all. By default the sources are whole-band and add up to the input (``bands``); ``residual``
    keeps what no source took as one more output instead; ``raw`` gives the model's own outputs
    (band-limited to its rate, not adding up: tests and benchmarks). Raises ``TooShortError`` for an
    input under one STFT window, ``AudioReadError`` when the input yields a different number of
    frames than announced.
    """
    check_length(frames, sr, lm)
    msr = lm.sample_rate
    hop = lm.stft.cfg.hop_length  # chunks on the STFT frame grid (see separate_stream)
    chunk, overlap = int(round(chunk_seconds * msr / hop)) * hop, int(round(overlap_seconds * msr / hop)) * hop
    if chunk < 4 * lm.stft.cfg.n_fft or not 0 <= 2 * overlap <= chunk:
        raise ValueError(
            f"chunk_seconds={chunk_seconds}, overlap_seconds={overlap_seconds}: the chunk must be at "
            f"least {4 * lm.stft.cfg.n_fft / msr:.3f} s and the overlap at most half the chunk"
        )
    threads = threads or default_threads()
    batch = batch_size or (DEFAULT_BATCH["cpu"] * threads if lm.device.type == "cpu" else DEFAULT_BATCH["cuda"])
    n_src = len(lm.source_names)
    n_sig = n_src if raw else channels_per_source(raw) * n_src + 1  # 16 kHz signals per channel
    n_out = len(output_names(lm, residual and not raw))
    to16, back = _Stream(sr, msr, ch), _Stream(msr, sr, ch * n_sig)
    written, read_total = 0, 0
    pending: list[np.ndarray] = []  # the input at its own rate, until its outputs come back
    block_frames = max(4096, int(chunk_seconds * sr))

    def blocks():  # the input at 16 kHz, [n, ch] blocks; the resampler's tail at the end
        nonlocal read_total
        while True:
            x = read_native(block_frames)
            if not len(x):
                break
            read_total += len(x)
            if not raw:
                pending.append(np.asarray(x, np.float32))
            yield to16(x)
        if read_total != frames:
            raise audio.AudioReadError(
                f"holds {read_total} frames, its header says {frames}; the "
                "file is truncated or corrupt: re-download or re-export it"
            )
        yield to16(np.zeros((0, ch), np.float32), last=True)

    def take_input(n: int) -> np.ndarray:
        nonlocal pending
        x = np.concatenate(pending) if len(pending) != 1 else pending[0]
        pending = [x[n:]]
        return x[:n]

    def finish(y: np.ndarray) -> None:
        nonlocal written
        if not raw:
            y = combine(y, take_input(len(y)), n_src, ch, residual)
        write(y)
        written += len(y)

    def emit(y: np.ndarray, last: bool = False) -> None:
        if on_progress is not None:
            on_progress(len(y) / msr)
        finish(back(y, last=last)[: frames - written])

    it = blocks()
    with batched_runner(lm, threads) as run:
        separate = run if raw else with_shares(run, lm.stft)
        separate_stream(lambda: next(it, None), separate, n_sig, ch, emit, chunk, overlap, batch, hop)
    emit(np.zeros((0, ch * n_sig), np.float32), last=True)
    if frames - written > sr // 100:
        raise RuntimeError(f"internal error: produced {written} of {frames} frames")
    if written < frames:  # the resamplers' rounding: a sample or two
        tail = np.zeros((frames - written, ch * n_sig), np.float32)
        if raw:
            write(tail[:, : n_out * ch])
            written = frames
        else:
            finish(tail)
    return written
