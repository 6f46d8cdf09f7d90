"""Kept checkpoints: the weights a training run keeps at listed iterations, for the pretraining-length axis.

A pretraining run keeps its weights at the iterations ``budget.keep_pretrain`` lists (fractions of
``budget.pretrain``, or integer steps) as ``kept/step-<n>.ckpt``, and the digest of each in
``kept/kept.json`` (copied into ``status.json`` under ``kept`` when the run finishes). Fine-tunes and
zero-shot probes of ``pretrain_steps=<value>`` start from one of them; ``pretrain_steps=end`` is the
run's ``final.ckpt``, as in the paper's grid.

The from-scratch baseline keeps the iterations it is compared at: ``budget.finetune`` (equal
*downstream* iterations: is a pretrained start better than random weights?) and each kept
pretraining step + ``budget.finetune`` (equal *total* iterations, the paper's rule), and scores each
on the full test list into ``kept/step-<n>/`` (``scores.csv``, ``result.json``, whose grid point
carries ``kept_step``). No run trains longer for any of this.

This module is light (no torch): plans, the status command and the report read it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from transfersep.files import KEPT_DIR, KEPT_INDEX

END = "end"  # the pretrain_steps value of the paper's grid: the end of pretraining (final.ckpt)


class KeepError(ValueError):
    """A keep list or a pretrain_steps value names no iteration of the run (the message says which)."""


def step_of(value: Any, total: int, key: str) -> int:
    """The iteration ``value`` names: a fraction of ``total`` (a float in (0, 1]) or a step (an int)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise KeepError(f"{key}: {value!r} is neither a fraction of the budget (0.25) nor a step (2500)")
    # a fraction names at least step 1 (a tiny budget's quarter is still a checkpoint before the end)
    step = max(1, round(float(value) * total)) if isinstance(value, float) else int(value)
    if isinstance(value, float) and not 0 < value <= 1:
        raise KeepError(f"{key}: the fraction {value} is outside (0, 1]; write a fraction of the budget or a step")
    if not 1 <= step <= total:
        raise KeepError(f"{key}: {value!r} is step {step}, outside 1..{total} (the budget); choose a step within it")
    return step


def kept_steps(keep: Iterable[Any] | None, total: int, key: str = "budget.keep_pretrain") -> list[int]:
    """The sorted distinct iterations a run of ``total`` steps keeps (its end is ``final.ckpt``: not kept)."""
    if keep is None:
        return []
    if isinstance(keep, str | int | float):
        raise KeepError(f"{key}: must be a list, e.g. [0.25, 0.5], got {keep!r}")
    return sorted({s for v in keep if (s := step_of(v, total, key)) < total})


def axis_step(steps_cfg: Any, total: int) -> int:
    """The pretraining iteration of a ``pretrain_steps`` config (``fraction`` or ``steps``)."""
    name = getattr(steps_cfg, "name", None) if steps_cfg is not None else None
    if steps_cfg is None or name == END:
        return total
    value = steps_cfg.get("steps") if steps_cfg.get("steps") is not None else steps_cfg.get("fraction")
    return step_of(value, total, f"pretrain_steps={name}")


def baseline_steps(pretrain_kept: Iterable[int], pretrain_total: int, finetune: int) -> list[int]:
    """The iterations a baseline of ``pretrain_total + finetune`` steps keeps: equal downstream
    iterations (``finetune``) and equal totals (each kept pretraining step + ``finetune``)."""
    total = pretrain_total + finetune
    return sorted({s for s in (finetune, *(k + finetune for k in pretrain_kept)) if 0 < s < total})


def kept_ckpt(run_dir: str | Path, step: int) -> Path:
    return Path(run_dir) / KEPT_DIR / f"step-{int(step)}.ckpt"


def kept_eval_dir(run_dir: str | Path, step: int) -> Path:
    """Where a baseline's score at a kept step lies (``scores.csv``, ``result.json``)."""
    return Path(run_dir) / KEPT_DIR / f"step-{int(step)}"


def read_kept(run_dir: str | Path) -> dict[int, dict[str, Any]]:
    """``{step: {"path", "step", "weights_sha256"}}`` of the run's kept checkpoints ({} when none)."""
    try:
        raw = json.loads((Path(run_dir) / KEPT_DIR / KEPT_INDEX).read_text())
    except (OSError, ValueError):
        return {}
    return {int(k): v for k, v in raw.items() if isinstance(v, dict)} if isinstance(raw, dict) else {}


def record_kept(run_dir: str | Path, step: int, path: Path, digest: str) -> None:
    """Add one kept checkpoint to ``kept/kept.json`` (atomically; a resumed run keeps the others)."""
    from transfersep.files import atomic_write_json

    books = read_kept(run_dir)
    books[int(step)] = {"path": f"{KEPT_DIR}/{path.name}", "step": int(step), "weights_sha256": digest}
    atomic_write_json(Path(run_dir) / KEPT_DIR / KEPT_INDEX, {str(k): books[k] for k in sorted(books)})


def kept_record(ckpt: Path) -> dict[str, Any] | None:
    """The books of the kept checkpoint ``ckpt`` (``.../kept/step-<n>.ckpt``), or None when it is none."""
    if ckpt.parent.name != KEPT_DIR or not ckpt.name.startswith("step-"):
        return None
    try:
        step = int(ckpt.stem.removeprefix("step-"))
    except ValueError:
        return None
    return read_kept(ckpt.parent.parent).get(step)
