"""A run's data is part of its identity: the index of the files it reads (each file's path below the
dataset root, size and modification time, with the track, split and source it serves).

The run directory is a function of the grid point, so without this a stem added to a song, a song
added to the set or a file re-exported in place would leave the run "finished" and the same command
would skip it, reporting scores of data that no longer stands there. The index is recorded with the
run's config (``run_config.json``, key ``data``) at its first launch; a relaunch over an index that
differs is refused in one line saying what changed (``rerun=true`` trains it again on the data as
it is now). Paths are relative to the dataset root, so a dataset moved elsewhere (``paths.*``)
keeps its identity as long as its files keep their sizes and times (``cp -p``, ``rsync -a``).

Generated data (``data.generated=true``) has no files and no index. Runs recorded before the index
was part of the record are not checked.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from transfersep.files import RUN_CONFIG
from transfersep.run.identity import ConfigChanged
from transfersep.run.plan import Plan

LISTED = 5000  # indexes up to this many files keep every entry, so a refusal can name the changed files
NAMED = 5  # changed files named in the one-line refusal


def data_identity(cfg: DictConfig, plan: Plan) -> dict[str, Any] | None:
    """The index of the files the run reads; None for generated data, or where the data cannot be
    indexed now (the launch's own checks say why when the run needs it)."""
    if cfg.data.generated:
        return None
    from transfersep.data.index import DatasetError
    from transfersep.data.registry import index_from_cfg

    ds_cfg = cfg.pretrain.dataset if plan.stage == "pretrain" else cfg.downstream.dataset
    try:
        idx = index_from_cfg(ds_cfg)
    except (DatasetError, OSError, ValueError, KeyError):
        return None
    root = Path(idx.root)
    entries: dict[str, list] = {}
    for t in idx.tracks:
        for source, refs in t.sources.items():
            for r in refs:
                p = Path(r.path)
                try:
                    st = os.stat(p)
                    rel = p.relative_to(root).as_posix() if p.is_relative_to(root) else str(p)
                except OSError:
                    continue
                stream = "" if r.stream is None else f"#{r.stream}"
                entries[f"{rel}{stream}"] = [t.split, t.name, source, st.st_size, st.st_mtime_ns]
    h = hashlib.sha256(json.dumps(sorted(entries.items()), separators=(",", ":")).encode())
    out: dict[str, Any] = {"dataset": idx.dataset, "root": str(root), "files": len(entries), "sha256": h.hexdigest()}
    if len(entries) <= LISTED:
        out["entries"] = entries
    return out


def recorded_data(run_dir: Path) -> dict[str, Any] | None:
    try:
        rec = json.loads((Path(run_dir) / RUN_CONFIG).read_text())
    except (OSError, ValueError):
        return None
    data = rec.get("data") if isinstance(rec, dict) else None
    return data if isinstance(data, dict) and data.get("sha256") else None


def changes(old: dict[str, Any], new: dict[str, Any]) -> str:
    """What changed between two indexes, in words (the files named where both list them)."""
    a, b = old.get("entries"), new.get("entries")
    if not isinstance(a, dict) or not isinstance(b, dict):
        return f"{old.get('files')} files then, {new.get('files')} now, other sizes or times"
    parts = []
    for what, names in (
        ("added", sorted(b.keys() - a.keys())),
        ("removed", sorted(a.keys() - b.keys())),
        ("changed", sorted(k for k in a.keys() & b.keys() if a[k] != b[k])),
    ):
        if names:
            shown = ", ".join(names[:NAMED]) + (f" and {len(names) - NAMED} more" if len(names) > NAMED else "")
            parts.append(f"{len(names)} file(s) {what} ({shown})")
    return "; ".join(parts) or "the same files in other tracks, splits or sources"


def data_problem(plan: Plan, now: dict[str, Any] | None) -> str | None:
    """Why this launch may not continue (or skip) the run recorded in its directory, or None."""
    old = recorded_data(plan.run_dir)
    if old is None or now is None or old["sha256"] == now["sha256"]:
        return None
    return (
        f"{plan.run_dir} was trained on other data: under {now['root']}, {changes(old, now)} since its first "
        "launch; add rerun=true to train it again on the data as it is now, or choose another study= to keep both"
    )


def check_data_unchanged(cfg: DictConfig, plan: Plan, now: dict[str, Any] | None) -> None:
    """Refuse a relaunch over changed data (``ConfigChanged``, one line); ``rerun=true`` starts over."""
    if cfg.rerun:
        return
    problem = data_problem(plan, now)
    if problem:
        raise ConfigChanged(problem)
