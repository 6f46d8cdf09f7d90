"""Where and how a model runs for separation: device, precision (fp32/int8), CPU threads.

``prepare_model`` loads and places a model once; ``batched_runner`` gives the function that
separates a batch of chunks. Both are used by ``transfersep.inference.separate`` and the speed bench.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from transfersep.model.loading import load_model
from transfersep.model.package import LoadedModel

DEFAULT_BATCH = {"cpu": 8, "cuda": 64}  # on CPU per worker thread
PRECISIONS = ("fp32", "int8", "auto")
INT8_MIN_AGREEMENT_DB = 40.0  # auto falls back to fp32 below this (int8 vs fp32 on a probe)


def resolve_device(device: str | torch.device | None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is visible here; use --device cpu or auto")
    return dev


def prepare_model(
    model: LoadedModel | str | os.PathLike,
    device: str | torch.device | None = None,
    precision: str = "fp32",
    clusters: bool = False,
) -> LoadedModel:
    """Load (if a path) and place a model. ``precision``: fp32 | int8 (CPU only) | auto (int8 on
    CPU where this torch has it and it agrees with fp32 to ``INT8_MIN_AGREEMENT_DB`` on a probe
    signal, else fp32). An int8 model is returned as is (CPU only).

    ``clusters``: the model will only serve its deep-clustering embeddings (``--clusters K``), so a
    deep-clustering pretraining model, whose mask head was never trained, is welcome; ``auto`` then
    means fp32 (the int8 probe measures the mask head, which clustering does not use). A head the
    model's training never trained is refused (``check_heads``)."""
    if precision not in PRECISIONS:
        raise ValueError(f"--precision {precision!r}: choose one of {PRECISIONS}")
    dev = resolve_device(device)
    lm = model if isinstance(model, LoadedModel) else load_model(model, "cpu")
    check_heads(lm, clusters)
    if clusters and precision == "auto":
        precision = "fp32"
    quantized = lm.meta.get("inference_precision") == "int8"
    if (quantized or precision == "int8") and dev.type != "cpu":
        raise ValueError("int8 inference runs on CPU only; use --precision fp32 with --device cuda")
    if quantized:
        return lm
    if precision == "int8" or (precision == "auto" and dev.type == "cpu"):
        try:
            with _single_thread():
                q = lm.int8()
        except RuntimeError as e:
            if precision == "int8":
                raise ValueError(str(e)) from e
            return lm.to(dev)
        if precision == "int8":
            return q
        with _single_thread():
            agreement = int8_agreement_db(lm.to("cpu"), q)
        q.meta["int8_agreement_db"] = round(agreement, 1)
        if agreement >= INT8_MIN_AGREEMENT_DB:
            return q
        warnings.warn(
            f"{lm.path}: int8 inference agrees with fp32 to only {agreement:.1f} dB on a probe signal "
            f"(< {INT8_MIN_AGREEMENT_DB} dB); separating in fp32",
            stacklevel=2,
        )
    return lm.to(dev)


def check_heads(lm: LoadedModel, clusters: bool) -> None:
    """``ValueError`` when the head a separation needs was never trained: a pretraining trains the
    head its objective's entry names (``transfersep.model.objectives``: deep clustering the embedding
    head, MixIT the mask head with its M outputs); a fine-tune or baseline trains both."""
    from transfersep.model.objectives import get

    if lm.meta.get("phase") != "pretrain":
        return
    trains = get(lm.objective).trains
    if trains == "mask" and clusters:
        raise ValueError(
            f"{lm.path}: a pretraining model (objective {lm.objective}): its embedding head was never trained "
            f"(its objective trains the mask head only), so --clusters has nothing to cluster. Separate without "
            f"--clusters: it writes the model's {len(lm.source_names)} outputs ({', '.join(lm.source_names)})"
        )
    if trains == "embedding" and not clusters:
        raise ValueError(
            f"{lm.path}: a pretraining model (objective {lm.objective}: deep-clustering loss only): its mask "
            "head was never trained, so it cannot separate into named sources. Hear its K clusters with "
            "--clusters K, or fine-tune it on a downstream set first (transfersep train pretrain=<corpus> "
            "downstream=<set>) and separate with that run's model.safetensors"
        )


@contextlib.contextmanager
def _single_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def int8_agreement_db(fp32: LoadedModel, int8: LoadedModel, seconds: float = 1.5) -> float:
    """Worst per-source SNR (dB) of the int8 model's output against the fp32 one on a fixed probe
    (harmonic tones over noise). A safeguard for ``precision="auto"``: dynamic int8 quantization
    uses one scale per weight tensor, which a trained model with outlier weights could defeat."""
    rng = np.random.default_rng(0)
    sr = fp32.sample_rate
    t = np.arange(int(seconds * sr)) / sr
    x = sum(0.1 / k * np.sin(2 * np.pi * 196.0 * k * t) for k in range(1, 8)) * (1 + np.sin(2 * np.pi * 1.5 * t))
    x = torch.from_numpy((x + 0.05 * rng.standard_normal(len(t))).astype(np.float32))[None]
    with torch.inference_mode():
        ref, est = fp32.separate(x)[0], int8.separate(x)[0]
    err = (est - ref).pow(2).sum(-1).clamp_min(1e-20)
    return float((10 * torch.log10(ref.pow(2).sum(-1).clamp_min(1e-20) / err)).min())


def default_threads() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 4))


@contextlib.contextmanager
def batched_runner(lm: LoadedModel, threads: int | None = None) -> Iterator[Callable[[torch.Tensor], torch.Tensor]]:
    """``run(mix [B, n]) -> [B, C, n]``. On CPU the batch is split over ``threads`` Python threads,
    each running its part with single-threaded kernels (torch releases the GIL inside them).

    Why not torch's own intra-op threads: on a machine whose cores are shared (the usual case on
    workstations and login nodes) their barrier-synchronised kernels collapse when one thread is
    descheduled: measured here on 2 busy cores, int8 with 2 intra-op threads ran 5-8x slower than
    with one, while independent threads never fall below one thread's speed.
    """
    n = threads or default_threads()
    if lm.device.type != "cpu":
        with torch.inference_mode():
            yield lm.separate
        return
    with _single_thread():
        if n == 1:
            with torch.inference_mode():
                yield lm.separate
            return
        with ThreadPoolExecutor(n, thread_name_prefix="transfersep-separate") as pool:

            def run(mix: torch.Tensor) -> torch.Tensor:
                parts = mix.tensor_split(min(n, len(mix)))
                return torch.cat(list(pool.map(lm.separate, parts)))  # separate(): inference mode per thread

            yield run
