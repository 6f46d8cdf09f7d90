"""Chunked overlap-add separation of a 16 kHz stream, and streaming resampling around it.

The parts of ``transfersep.inference.separate`` that see no files: ``separate_stream`` cuts a stream into
chunks on the STFT frame grid, separates several per forward pass and overlap-adds them with a
sin^2/cos^2 crossfade (see ``transfersep.inference.separate``'s docstring for why); ``_Stream`` resamples
blocks with soxr's streaming resampler (identical to one-shot resampling).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import soxr
import torch


def crossfade(n: int) -> np.ndarray:
    """Fade-in ramp [n]: sin^2, so ramp + its mirror (cos^2) is one at every sample."""
    return (np.sin(0.5 * np.pi * (np.arange(n) + 0.5) / n) ** 2).astype(np.float32)


def _window(length: int, overlap: int, first: bool, last: bool, ramp: np.ndarray) -> np.ndarray:
    w = np.ones(length, np.float32)
    if overlap and not first:
        w[:overlap] = ramp
    if overlap and not last:
        w[-overlap:] = 1.0 - ramp
    return w


class _Stream:
    """A soxr stream for [N, channels] float32 blocks; the identity when the rates are equal."""

    def __init__(self, sr_in: int, sr_out: int, channels: int):
        self.rs = (
            None if sr_in == sr_out else soxr.ResampleStream(sr_in, sr_out, channels, dtype="float32", quality="HQ")
        )

    def __call__(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        block = np.ascontiguousarray(block, dtype=np.float32)
        return block if self.rs is None else self.rs.resample_chunk(block, last=last)


def separate_stream(
    read_block: Callable[[], np.ndarray | None],
    separate: Callable[[torch.Tensor], torch.Tensor],
    n_sources: int,
    channels: int,
    emit: Callable[[np.ndarray], None],
    chunk: int,
    overlap: int,
    batch_size: int,
    align: int = 1,
) -> int:
    """Chunked overlap-add separation of a 16 kHz stream; returns its length in samples.

    ``read_block()`` gives the next [n, channels] block (None at the end); ``separate`` maps
    [B, n] -> [B, C, n]; ``emit`` receives finished output as [n, C*channels] (source-major:
    source s, channel c is column s*channels + c), in order and exactly once per sample.
    Every chunk starts at a multiple of ``align`` (give the STFT hop): masking in the STFT domain
    is not shift-invariant, so chunks on the whole-file frame grid agree with a whole-file pass.
    """
    if not 0 <= 2 * overlap <= chunk:
        raise ValueError(f"overlap ({overlap} samples) must be at most half the chunk ({chunk})")
    if chunk % align or overlap % align:
        raise ValueError(f"chunk ({chunk}) and overlap ({overlap}) must be multiples of align ({align})")
    hop, ramp = chunk - overlap, crossfade(overlap) if overlap else None
    inp = np.zeros((channels, 0), np.float32)  # inp[:, 0] is absolute sample `base`
    acc = np.zeros((n_sources, channels, 0), np.float32)
    wsum = np.zeros(0, np.float32)
    base = 0
    next_start, total, done = 0, None, False
    pending: list[tuple[int, int, bool, bool]] = []  # (start, length, first, last)

    def run_pending() -> None:
        nonlocal acc, wsum
        for length in sorted({p[1] for p in pending}):
            group = [p for p in pending if p[1] == length]
            x = np.stack([inp[:, s - base : s - base + length] for s, *_ in group])  # [G, ch, L]
            y = separate(torch.from_numpy(x.reshape(-1, length))).float().cpu().numpy()
            y = y.reshape(len(group), channels, n_sources, length).transpose(0, 2, 1, 3)  # [G, C, ch, L]
            end = max(s + length for s, *_ in group)
            if end - base > acc.shape[-1]:
                grow = end - base - acc.shape[-1]
                acc = np.concatenate([acc, np.zeros((n_sources, channels, grow), np.float32)], axis=-1)
                wsum = np.concatenate([wsum, np.zeros(grow, np.float32)])
            for (s, ln, first, last), yi in zip(group, y):
                w = _window(ln, overlap, first, last, ramp)
                acc[..., s - base : s - base + ln] += yi * w
                wsum[s - base : s - base + ln] += w
        pending.clear()

    while not done:
        if total is None:
            block = read_block()
            if block is None:
                total = base + inp.shape[1]
            elif len(block):
                inp = np.concatenate([inp, block.T], axis=1)
        buf_end = base + inp.shape[1]
        while not done:  # cut every chunk the buffered input allows
            if total is not None and total <= chunk:
                if total:
                    pending.append((0, total, True, True))
                done = True
            elif next_start + chunk < buf_end or (total is not None and next_start + chunk == total):
                last = total is not None and next_start + chunk == total
                pending.append((next_start, chunk, next_start == 0, last))
                next_start += hop
                done = last
            elif total is not None:  # a partial chunk would be left: end with a full one, moved back
                start = (total - chunk) // align * align
                pending.append((start, total - start, False, True))
                done = True
            else:
                break
        if pending and (len(pending) * channels >= batch_size or done):
            run_pending()
            safe = total if done else max(0, next_start - hop)  # no later chunk starts before this
            k = safe - base
            if k > 0:
                # weights are >= 1/2 wherever a chunk was accumulated; 0 only for an empty input
                emit((acc[..., :k] / np.maximum(wsum[:k], 1e-12)).reshape(n_sources * channels, k).T)
                acc, wsum, inp, base = acc[..., k:], wsum[k:], inp[:, k:], safe
    return total or 0
