"""Scoring a run's separator on its downstream set's test excerpts, and the records that say so.

``score_and_record`` is the one path from a separator to ``scores.csv`` / ``result.json``
(``evaluation.evaluate`` writes them): the fine-tune's or baseline's final weights (``run.fit``),
the zero-shot probe (``run.probe``) and a baseline's kept weights (``run.keeping``) all go through
it, with one header in ``result.json["extra"]`` (``record_header``) and one batch-size rule
(``batch_size``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from transfersep.run.plan import Plan

MASKS = "masks"  # a separator of mask outputs: as many excerpts a pass as memory makes fast
CLUSTERS = "clusters"  # k-means of embeddings, [B, T, F, D]: 20 floats a bin, so the training batch
KEPT = "kept"  # a baseline's kept weights: at the training batch they were always scored at


def batch_size(cfg: DictConfig, device: Any, how: str = MASKS) -> int:
    """Excerpts per forward pass when scoring. Scores depend on it only in the last bit of a
    multi-threaded CPU's sums, but they must not change between a run's launches (a kept step
    scored before is never scored again), so each separator keeps the batch it was scored at."""
    if how in (CLUSTERS, KEPT):
        return int(cfg.data.batch_size)
    from transfersep.evaluation.batches import inference_batch

    return inference_batch(int(float(cfg.data.excerpt_seconds) * 16_000), device)


def split_record(dm: object) -> dict:
    """``result.json["extra"]["split"]``: the tracks (pieces, takes, songs) the run trained and was
    tested on; the report's recipe test reads n_test / n_train when folds share training pieces."""
    desc = getattr(dm, "description", None) or {}
    return {f"{s}_tracks": (desc.get(s) or {}).get("tracks") for s in ("train", "test")}


def record_header(cfg: DictConfig, plan: Plan, dm: Any, checkpoint: str | Path, fields: dict[str, Any]) -> dict:
    """``result.json["extra"]``: what every scored model records (seed, split, study, the weights
    scored and the parent they were trained from), then ``fields`` of the caller's own."""
    return {
        "seed": int(cfg.seed),
        "split": split_record(dm),
        "study": str(cfg.study),
        "checkpoint": str(checkpoint),
        **fields,
        **({"parent": plan.parent} if plan.parent else {}),
    }


def mixture_as_estimate_sisdr(test_set: Any, n_sources: int, device: Any, batch_size: int | None = None) -> float:
    """The floor a separator should clear on ``test_set``: the mean excerpt SI-SDR (dB) of the mixture
    itself as the estimate of every source, scored as the model's estimates are."""
    import numpy as np

    from transfersep.evaluation.evaluate import score_excerpts
    from transfersep.evaluation.sisdr import excerpt_means

    def identity(m):
        return m[:, None].expand(-1, n_sources, -1).clone()

    floor, silent, _ = score_excerpts(identity, test_set, n_sources, batch_size=batch_size, device=device)
    return float(np.nanmean(excerpt_means(floor, silent)))


def score_and_record(
    cfg: DictConfig,
    plan: Plan,
    dm: Any,
    separate: Callable,
    *,
    checkpoint: str | Path,
    device: Any,
    how: str = MASKS,
    align: Callable | None = None,
    floor: bool = True,
    progress: bool = False,
    out_dir: Path | None = None,
    grid_point: dict | None = None,
    fields: dict[str, Any] | None = None,
) -> dict:
    """Score ``separate`` on ``dm``'s test excerpts and write ``scores.csv`` / ``result.json`` into
    ``out_dir`` (default: the run directory) under ``grid_point`` (default: the run's), with the
    caller's ``fields`` in ``result.json["extra"]`` (``record_header``). ``floor``: record the
    mixture-as-estimate SI-SDR beside it; ``progress``: report the passes on the console.
    Returns the result."""
    from transfersep.evaluation.evaluate import evaluate
    from transfersep.run import console

    batch, fields = batch_size(cfg, device, how), dict(fields or {})
    if floor:  # the mixture needs no model: scored at the mask separators' batch whatever the model's
        n = len(dm.source_names)
        fields["mixture_as_estimate_sisdr"] = mixture_as_estimate_sisdr(dm.test_set, n, device, batch_size(cfg, device))
    separate, close = console.evaluation_progress(separate, len(dm.test_set), batch, progress)
    try:
        return evaluate(
            separate,
            dm.test_set,
            dm.source_names,
            out_dir or plan.run_dir,
            plan.grid_point if grid_point is None else grid_point,
            batch_size=batch,
            device=device,
            extra=record_header(cfg, plan, dm, checkpoint, fields),
            align=align,
        )
    finally:
        close()
