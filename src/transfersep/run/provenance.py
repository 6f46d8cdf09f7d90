"""Which checkpoint a fine-tune started from, and whether that is still the model standing there.

A fine-tune records its parent (``status.json`` and the package header under ``parent``,
``result.json`` under ``extra.parent``, the W&B config under ``parent``)::

    {"kind": "run" | "package" | "checkpoint",
     "path": "/abs/path/loaded",                  # final.ckpt of the parent run, or init_from
     "subdir": "pretrain/slakh-none",             # run parents: its place in the study directory
     "weights_sha256": "...",                     # digest of the ChimeraNet weights: the checksum
                                                  #   a package carries (export.weights_digest)
     "grid_point": {...}, "study": "paper", "steps": 10000}   # as the parent recorded them

Identity is by content: a parent redone into the same weights (same seed, deterministic kernels)
leaves its fine-tunes current; any other weights make them **stale** (``stale_reason``). A finished
pretraining run records its own digest in ``status.json`` (``weights_sha256``), so telling stale
from current reads two small JSON files, never a checkpoint. A parent that is gone, or being redone
(no ``final.ckpt``, or not finished), makes its children stale too ("orphaned"): nothing stands
behind them any more, so the status command flags them and the report leaves them out.

A child records the digest of the weights it actually loaded, in its ``status.json`` the moment it
loaded them (``run.fit`` / ``run.probe``), so an interrupted child is judged by what it trained from.

This module imports no torch unless asked to hash a checkpoint (``compute=True``), so the status
command and the report stay light.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import time
from pathlib import Path
from typing import Any

from transfersep.files import CURVE, FINAL_CKPT, LAST_CKPT, PACKAGE, RESULT, SCORES, STATUS, SUPERSEDED, read_status
from transfersep.run.records import finished

log = logging.getLogger("transfersep")
# what a run produced from its parent; status.json, train.log and .hydra/ stay (they are rewritten)
OUTPUTS = (Path(LAST_CKPT).parts[0], FINAL_CKPT, PACKAGE, "csv", SCORES, RESULT, CURVE, "wandb")


def package_meta(path: str | os.PathLike) -> dict[str, Any] | None:
    """The transfersep metadata of a ``.safetensors`` package, read from its header alone (8-byte
    little-endian header length, then the JSON header whose ``__metadata__`` holds it)."""
    try:
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            if n > 100_000_000:
                return None
            header = json.loads(f.read(n))
        meta = json.loads(header["__metadata__"]["transfersep"])
        return meta if isinstance(meta, dict) else None
    except (OSError, struct.error, ValueError, KeyError, TypeError):
        return None


def identity(path: str | os.PathLike, compute: bool = False) -> dict[str, Any] | None:
    """The parent record of the model file at ``path`` (None where no file is). The digest comes
    from the parent's own books (its status.json, or the package header); where neither has it,
    ``compute=True`` loads the weights and hashes them, else it is None."""
    path = Path(path)
    if not path.is_file():
        return None
    rec: dict[str, Any] = {
        "kind": "checkpoint",
        "path": str(path.resolve()),
        "weights_sha256": None,
        "grid_point": None,
        "study": None,
        "steps": None,
    }
    meta = package_meta(path)
    if meta is not None:
        run = meta.get("run") or {}
        rec.update(
            kind="package",
            weights_sha256=meta.get("weights_sha256"),
            grid_point=run.get("grid_point"),
            study=run.get("study"),
            steps=meta.get("steps"),
        )
    elif path.name == FINAL_CKPT and (path.parent / STATUS).is_file():
        run_dir = path.parent
        st = read_status(run_dir) or {}
        rec.update(
            kind="run",
            subdir=f"{run_dir.parent.name}/{run_dir.name}",
            grid_point=st.get("grid_point"),
            study=st.get("study") or run_dir.parents[1].name,
            steps=(st.get("result") or {}).get("steps"),
        )
        if finished(run_dir, st):  # a parent being redone has no digest to compare with yet
            rec["weights_sha256"] = st.get("weights_sha256")
    else:  # a checkpoint a run kept at an iteration, or a plain file (no books)
        _kept_parent(path, rec)
    if rec["weights_sha256"] is None and compute:
        from transfersep.model.loading import load_model
        from transfersep.model.package import weights_digest

        rec["weights_sha256"] = weights_digest(load_model(path).net.state_dict())
    return rec


def _kept_parent(path: Path, rec: dict[str, Any]) -> None:
    """A checkpoint a run kept at an iteration (``run.kept``): its digest and step are in the run's
    ``kept/kept.json`` from the moment it was kept; ``checkpoint`` says which file of the run it is."""
    from transfersep.files import KEPT_DIR
    from transfersep.run.kept import kept_record

    run_dir = path.parent.parent
    if path.parent.name != KEPT_DIR or not (run_dir / STATUS).is_file():
        return
    books = kept_record(path) or {}
    st = read_status(run_dir) or {}
    rec.update(
        kind="run",
        subdir=f"{run_dir.parent.name}/{run_dir.name}",
        checkpoint=f"{KEPT_DIR}/{path.name}",
        grid_point=st.get("grid_point"),
        study=st.get("study") or run_dir.parents[1].name,
        steps=books.get("step"),
        weights_sha256=books.get("weights_sha256"),
    )


def locate(run_dir: str | os.PathLike, record: dict[str, Any]) -> Path:
    """Where the recorded parent stands now: a run parent by its place in the study directory (so
    a study directory that was moved or copied still finds it), a file parent by its path."""
    if record.get("kind") == "run" and record.get("subdir"):
        return Path(run_dir).parents[1] / record["subdir"] / (record.get("checkpoint") or FINAL_CKPT)
    return Path(record.get("path") or "")


def describe(record: dict[str, Any]) -> str:
    where = record.get("subdir") or record.get("path")
    study = f" of study {record['study']}" if record.get("study") else ""
    return f"{where}{study} ({str(record.get('weights_sha256'))[:12]})"


def stale_reason(
    run_dir: str | os.PathLike, record: dict[str, Any] | None, current: dict[str, Any] | None = None
) -> str | None:
    """Why the run in ``run_dir``, built on the parent ``record``, is stale, or None when it is
    current or nothing can be compared (no record: a baseline; a plain
    checkpoint file whose digest is not in any books). ``current``: the parent the run would
    load now (default: what stands where the recorded one was).

    Stale: the parent now holds other weights; **orphaned**: the parent is gone (deleted, moved
    away), or its run has no finished weights (``final.ckpt`` removed by a retrain in progress or
    interrupted, or the run not finished): the child is no longer backed by the weights it loaded.
    """
    if not isinstance(record, dict) or not record.get("weights_sha256"):
        return None
    if current is None:
        where = locate(run_dir, record)
        current = identity(where)
        if current is None:
            if record.get("kind") == "run" and (where.parent / STATUS).is_file():
                state = (read_status(where.parent) or {}).get("state") or "unknown"
                return (
                    f"orphaned: its parent {describe(record)} has no {FINAL_CKPT} (state {state}: being "
                    "trained again, or interrupted)"
                )
            return f"orphaned: its parent {describe(record)} is gone ({where} does not exist)"
    if not current.get("weights_sha256"):
        if current.get("kind") == "run":
            state = (read_status(Path(current["path"]).parent) or {}).get("state") or "unknown"
            if state != "finished":
                return f"orphaned: its parent {describe(record)} is not finished (state {state})"
        return None  # no books to compare with (a plain checkpoint, or a run from before digests)
    if current["weights_sha256"] == record["weights_sha256"]:
        return None
    return f"built on {describe(record)}, but the parent is now {describe(current)}"


def superseded_dir(run_dir: str | os.PathLike) -> Path:
    """A new, empty ``superseded/<UTC time>/`` folder of ``run_dir`` (``-2``, ``-3`` … within one second)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    dest = Path(run_dir) / SUPERSEDED / stamp
    n = 1
    while dest.exists():
        n += 1
        dest = Path(run_dir) / SUPERSEDED / f"{stamp}-{n}"
    dest.mkdir(parents=True)
    return dest


def set_aside(run_dir: str | os.PathLike, why: str) -> Path | None:
    """Move what a stale run produced into ``superseded/<UTC time>/`` (never deleted, never
    resumed; ``result.json`` becomes ``result.superseded.json`` so that reports do not pick it up)
    with ``superseded.json`` saying why. Returns that folder, or None when there was nothing."""
    run_dir = Path(run_dir)
    present = [n for n in OUTPUTS if (run_dir / n).exists()]
    if not present:
        return None
    dest = superseded_dir(run_dir)
    for name in present:
        os.replace(run_dir / name, dest / ("result.superseded.json" if name == RESULT else name))
    from transfersep.files import atomic_write_json

    atomic_write_json(dest / f"{SUPERSEDED}.json", {"why": why, "moved": present, "status": read_status(run_dir) or {}})
    return dest


def own_digest(run_dir: str | os.PathLike) -> str | None:
    """The digest of the weights a finished run packaged (``model.safetensors``), for its status."""
    return (package_meta(Path(run_dir) / PACKAGE) or {}).get("weights_sha256")


def settle_parent(plan: Any, status: dict[str, Any] | None, wait_s: float = 600.0) -> dict[str, Any] | None:
    """Before a fine-tune (or a zero-shot probe) starts or is skipped: record in ``plan.parent`` the model it would load
    now, and when its run directory was built on another one, set those outputs aside so that
    nothing of them is resumed or kept (rank 0; other tasks of the job wait for that). Returns the
    status to go on with (None once set aside)."""
    if plan.stage not in ("finetune", "zeroshot") or plan.parent_ckpt is None or not plan.parent_ckpt.exists():
        return status
    from transfersep.run.lock import rank

    plan.parent = identity(plan.parent_ckpt, compute=True)
    why = stale_reason(plan.run_dir, (status or {}).get("parent"), current=plan.parent)
    if why and rank() == 0:
        moved = set_aside(plan.run_dir, why)
        log.warning("%s is stale: %s; training it again (its earlier outputs: %s)", plan.subdir, why, moved)
        return None
    deadline = time.monotonic() + wait_s
    while why and time.monotonic() < deadline:  # rank 0 rewrites status.json once it has moved them
        time.sleep(1.0)
        status = read_status(plan.run_dir)
        why = stale_reason(plan.run_dir, (status or {}).get("parent"), current=plan.parent)
    if why:
        raise RuntimeError(f"{plan.subdir}: rank 0 did not set the stale run aside within {wait_s:.0f} s ({why})")
    return status
