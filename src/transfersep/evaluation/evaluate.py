"""Evaluate a separator on the fixed test excerpts and write ``scores.csv`` + ``result.json``.

Files written (atomically) in ``out_dir``:

``scores.csv`` is written first and ``result.json`` last, so a ``result.json`` means a complete
evaluation (the report scans for it).

``scores.csv`` — one row per excerpt x source, in dataset order::

    excerpt,source,sisdr_db,silent_reference,track,start_s,seconds
    0,violin,4.8123...,0,10-NunBitten,12.3405,10.0
    0,clarinet,nan,1,10-NunBitten,12.3405,10.0   # silent reference: excluded (transfersep.evaluation.sisdr)

  ``excerpt`` is the index of the excerpt in the test dataset (the test list is fixed by seed, so
  the same index is the same excerpt for every model on that downstream set); ``sisdr_db`` is a
  float in dB or ``nan``; ``silent_reference`` is 0/1. ``track``, ``start_s`` and ``seconds`` say
  where that source's audio was read (track name, start in seconds, span in seconds of the track):
  the same for every source of a coherent excerpt, one per source for incoherent mixing; a
  generated excerpt is its own track ``generated-<i>``. They are empty for a dataset that cannot
  say (no ``describe``); the report then cannot block the excerpts into independent units.

``result.json`` — the summary (``RESULT_SCHEMA`` = 1)::

    {"schema": 1, "grid_point": {...}, "sources": [...], "n_excerpts": E,
     "overall": {"mean", "median", "std", "n"},   # over per-excerpt means (see below)
     "mean_of_source_means": float,               # mean over sources of per_source[*].mean
     "per_source": {name: {"mean", "median", "std", "n", "n_excluded"}},
     "n_excluded": int,                            # silent (excerpt, source) pairs left out
     "silence_db": -60.0, "test_set_sha1": str,    # fingerprint of the test mixtures
     "test_data": {"generated": bool, "files_root": str | None,  # what the test audio was
                   "tracks": int | None},
     "extra": {...}, "created": ISO time, "version": str}

  The **overall SI-SDR** of a model is the mean over excerpts of the per-excerpt mean over its
  non-silent sources (``sisdr.excerpt_means``): the paper's "average SI-SDR over 1000 samples", and
  the same per-excerpt numbers the paired Wilcoxon tests compare. ``std`` is the sample std (ddof=1);
  undefined statistics are ``null``, never NaN.
"""

from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import io
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from transfersep import __version__
from transfersep.evaluation.batches import heads_autocast, inference_batch
from transfersep.evaluation.sisdr import SILENCE_DB, batch_sisdr, excerpt_means, summarize
from transfersep.files import RESULT, SCORES, atomic_write_json, atomic_write_text

RESULT_SCHEMA = 1
SCORES_COLUMNS = ["excerpt", "source", "sisdr_db", "silent_reference", "track", "start_s", "seconds"]
Origin = tuple  # (track name, start in seconds, seconds read) of one source of one excerpt


def excerpt_origins(dataset: Dataset, i: int, n_sources: int) -> list[Origin] | None:
    """Where each source of test excerpt ``i`` comes from, or None when the dataset cannot say.

    Mixed excerpts (``data.mixing.ExcerptSet``) answer through ``describe`` (start samples at
    16 kHz, span = excerpt length x stretch rate); generated excerpts are independent draws, each
    its own track.
    """
    from transfersep.audio import SAMPLE_RATE
    from transfersep.data.generated import GeneratedExcerpts

    if isinstance(dataset, GeneratedExcerpts):
        return [(f"generated-{i}", 0.0, dataset.n / SAMPLE_RATE)] * n_sources
    describe = getattr(dataset, "describe", None)
    n = getattr(dataset, "n", None)
    if describe is None or n is None:
        return None
    plan = describe(i)
    return [
        (str(t), s / SAMPLE_RATE, n * float(r) / SAMPLE_RATE)
        for t, s, r in zip(plan["tracks"], plan["starts"], plan["rate"])
    ]


def data_record(dataset: Dataset) -> dict:
    """``result.json["test_data"]``: generated or not, the folder holding every test file, tracks."""
    from transfersep.data.generated import GeneratedExcerpts

    if isinstance(dataset, GeneratedExcerpts):
        return {"generated": True, "files_root": None, "tracks": None}
    tracks = getattr(dataset, "tracks", None)
    if not tracks:
        return {"generated": False, "files_root": None, "tracks": None}
    files = [r.path for t in tracks for refs in t.sources.values() for r in refs]
    try:
        root = os.path.commonpath([os.path.abspath(f) for f in files]) if files else None
    except ValueError:  # files on different drives
        root = None
    return {"generated": False, "files_root": root, "tracks": len(tracks)}


def _item(dataset: Dataset, i: int, n_sources: int) -> tuple[Tensor, Tensor]:
    item = dataset[i]
    if not isinstance(item, dict) or "mix" not in item or "sources" not in item:
        got = sorted(item) if isinstance(item, dict) else type(item).__name__
        raise ValueError(
            f"test dataset item {i} is {got}; expected a dict {{'mix': FloatTensor[N], 'sources': FloatTensor[C, N]}}"
        )
    mix, sources = torch.as_tensor(item["mix"]), torch.as_tensor(item["sources"])
    if mix.ndim != 1 or sources.ndim != 2 or sources.shape != (n_sources, mix.shape[0]):
        raise ValueError(
            f"test dataset item {i}: mix {tuple(mix.shape)}, sources {tuple(sources.shape)}; "
            f"expected mix [N] and sources [{n_sources}, N] ({n_sources} source names given)"
        )
    return mix.float(), sources.float()


def _batches(dataset: Dataset, indices: Sequence[int], n_sources: int, batch_size: int):
    """Yield (indices, mix [B, N], sources [B, C, N]); a batch only holds excerpts of one length."""
    idx: list[int] = []
    mixes: list[Tensor] = []
    refs: list[Tensor] = []
    for i in indices:
        mix, src = _item(dataset, i, n_sources)
        if mixes and (len(mixes) == batch_size or mix.shape[0] != mixes[0].shape[0]):
            yield idx, torch.stack(mixes), torch.stack(refs)
            idx, mixes, refs = [], [], []
        idx.append(i)
        mixes.append(mix)
        refs.append(src)
    if mixes:
        yield idx, torch.stack(mixes), torch.stack(refs)


def score_excerpts(
    separate: Callable[[Tensor], Tensor],
    dataset: Dataset,
    n_sources: int,
    indices: Sequence[int] | None = None,
    batch_size: int | None = None,
    device: str | torch.device = "cpu",
    silence_db: float = SILENCE_DB,
    fingerprint: bool = False,
    align: Callable[[Tensor, Tensor], Tensor] | None = None,
    bf16: bool | None = None,
) -> tuple[np.ndarray, np.ndarray, str | None]:
    """SI-SDR of ``separate`` on dataset items ``indices`` (default: all).

    ``separate(mix [B, N]) -> est [B, C, N]`` is called under ``torch.inference_mode`` with ``mix``
    on ``device``, ``batch_size`` excerpts at a time (None: ``inference_batch`` of the excerpts'
    length). Returns ``(scores [E, C] float64 dB with NaN for silent refs, silent [E, C] bool,
    sha1 of the mixtures or None)``. ``align(est, ref [B, C, N]) -> est [B, C, N]`` reorders
    unlabelled estimates against the references first (the zero-shot probe's clusters). ``bf16``:
    run ``separate`` under bf16 autocast (``heads_autocast``; None: on a GPU that has bf16).
    """
    indices = list(range(len(dataset))) if indices is None else list(indices)
    if not indices:
        raise ValueError("the test dataset is empty: nothing to evaluate")
    device = torch.device(device)
    if batch_size is None:
        batch_size = inference_batch(_item(dataset, indices[0], n_sources)[0].shape[-1], device)
    sha = hashlib.sha1() if fingerprint else None
    scores, silent = [], []
    for idx, mix, ref in _batches(dataset, indices, n_sources, batch_size):
        if sha is not None:
            sha.update(mix.contiguous().numpy().tobytes())
        with torch.inference_mode(), heads_autocast(device, bf16):
            est = separate(mix.to(device))
            if align is not None:
                est = align(est, ref.to(est.device))
        if not isinstance(est, Tensor) or est.shape != ref.shape:
            got = tuple(est.shape) if isinstance(est, Tensor) else type(est).__name__
            raise ValueError(
                f"separate(mix {tuple(mix.shape)}) returned {got}; expected [B, C, N] = {tuple(ref.shape)}"
            )
        if not torch.isfinite(est).all():
            raise FloatingPointError(
                f"separate() returned NaN/inf for test excerpts {idx[0]}..{idx[-1]}: "
                "the model has diverged; its scores would be meaningless"
            )
        s, q = batch_sisdr(est, ref, silence_db)
        scores.append(s.numpy())
        silent.append(q.numpy())
    return np.concatenate(scores), np.concatenate(silent), (sha.hexdigest() if sha else None)


def _fmt(x: float) -> str:
    return "nan" if math.isnan(x) else repr(float(x))


def scores_csv_text(
    indices: Sequence[int],
    source_names: Sequence[str],
    scores: np.ndarray,
    silent: np.ndarray,
    origins: Sequence[list[Origin] | None] | None = None,
) -> str:
    """The scores.csv text; ``origins[r]`` is ``excerpt_origins`` of row ``r`` (None: left empty)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(SCORES_COLUMNS)
    for r, e in enumerate(indices):
        where = origins[r] if origins is not None else None
        for c, name in enumerate(source_names):
            o = ["", "", ""] if where is None else [where[c][0], repr(float(where[c][1])), repr(float(where[c][2]))]
            w.writerow([e, name, _fmt(scores[r, c]), int(bool(silent[r, c])), *o])
    return buf.getvalue()


def summarize_scores(source_names: Sequence[str], scores: np.ndarray, silent: np.ndarray) -> dict:
    """The statistics part of result.json (``overall``, ``per_source``, ``n_excluded`` …)."""
    per_source = {}
    for c, name in enumerate(source_names):
        stats = summarize(scores[~silent[:, c], c])
        stats["n_excluded"] = int(silent[:, c].sum())
        per_source[name] = stats
    means = [v["mean"] for v in per_source.values() if v["mean"] is not None]
    return {
        "overall": summarize(excerpt_means(scores, silent)),
        "mean_of_source_means": float(np.mean(means)) if means else None,
        "per_source": per_source,
        "n_excluded": int(silent.sum()),
    }


def evaluate(
    separate: Callable[[Tensor], Tensor],
    dataset: Dataset,
    source_names: list[str],
    out_dir: Path,
    grid_point: dict,
    batch_size: int | None = None,
    device: str | torch.device = "cpu",
    extra: dict | None = None,
    silence_db: float = SILENCE_DB,
    align: Callable[[Tensor, Tensor], Tensor] | None = None,
) -> dict:
    """Score every test excerpt and write ``out_dir/scores.csv`` and ``out_dir/result.json``.

    Args:
        separate: ``mix [B, N] -> estimates [B, C, N]`` (e.g. ``SeparationSystem.separate``; put
            the module in eval mode first).
        dataset: map-style test set; item ``i`` is ``{"mix": [N], "sources": [C, N]}``.
        source_names: the C source names, in the order of ``sources``.
        out_dir: the run directory.
        grid_point: the run's grid point (stage, pretrain, augment, finetune, downstream).
        extra: anything else worth keeping with the result (steps, seed, checkpoint path …).
        align: see ``score_excerpts`` (unlabelled outputs only).

    Returns:
        the result.json dict.
    """
    indices = list(range(len(dataset)))
    scores, silent, sha = score_excerpts(
        separate, dataset, len(source_names), indices, batch_size, device, silence_db, fingerprint=True, align=align
    )
    return write_evaluation(out_dir, dataset, source_names, scores, silent, sha, grid_point, extra, silence_db)


def write_evaluation(
    out_dir: Path,
    dataset: Dataset,
    source_names: Sequence[str],
    scores: np.ndarray,
    silent: np.ndarray,
    test_set_sha1: str | None,
    grid_point: dict,
    extra: dict | None = None,
    silence_db: float = SILENCE_DB,
) -> dict:
    """Write ``scores.csv`` (with each excerpt's origins) then ``result.json`` for scores already
    computed on every item of ``dataset`` (``score_excerpts``: ``scores`` [E, C] dB, ``silent``
    [E, C] bool) — the writer of every evaluated model, whatever produced its estimates."""
    out_dir = Path(out_dir)
    source_names = list(source_names)
    indices = list(range(len(dataset)))
    if scores.shape != (len(indices), len(source_names)) or silent.shape != scores.shape:
        raise ValueError(
            f"scores {scores.shape} / silent {silent.shape} do not match {len(indices)} excerpts x "
            f"{len(source_names)} sources"
        )
    nonsilent = scores[~silent]
    if not np.isfinite(nonsilent).all():
        raise FloatingPointError(
            f"SI-SDR is not finite for a non-silent reference; refusing to write {out_dir / RESULT}"
        )
    result = {
        "schema": RESULT_SCHEMA,
        "grid_point": dict(grid_point),
        "sources": source_names,
        "n_excerpts": len(indices),
        **summarize_scores(source_names, scores, silent),
        "silence_db": float(silence_db),
        "test_set_sha1": test_set_sha1,
        "test_data": data_record(dataset),
        "extra": dict(extra or {}),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "version": __version__,
    }
    origins = [excerpt_origins(dataset, i, len(source_names)) for i in indices]
    atomic_write_text(out_dir / SCORES, scores_csv_text(indices, source_names, scores, silent, origins))
    atomic_write_json(out_dir / RESULT, result)
    return result
