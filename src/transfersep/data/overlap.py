"""Does the pretraining audio contain a downstream test file? Then a fine-tune's test score is not a
score on unseen audio, and the transfer it suggests is partly memory.

Files are compared by content (SHA-256 of the bytes), so a copy under another name or folder is
found. Only pretraining files of the same size as some test file can be equal, so only those are
read; their digests are cached by (path, size, modification time) in ``<cache_dir>/content-hashes.json``,
so a study's launches hash each file once. A re-encoded copy (other bytes) is not found.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path

from omegaconf import DictConfig

from transfersep.files import atomic_write_json

log = logging.getLogger("transfersep")
CACHE = "content-hashes.json"
NAMED = 3  # overlapping files named in the warning


def _walk(root: Path) -> Iterable[Path]:
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if not x.startswith(".")]
        for f in files:
            if not f.startswith("."):
                yield Path(d) / f


class Hashes:
    """Content digests cached by (path, size, mtime): a file changed in place is hashed again."""

    def __init__(self, cache_dir: Path | None):
        self.path = Path(cache_dir) / CACHE if cache_dir else None
        self.known: dict[str, list] = {}
        self.dirty = False
        if self.path is not None and self.path.is_file():
            try:
                self.known = json.loads(self.path.read_text())
            except (OSError, ValueError):
                self.known = {}

    def digest(self, path: Path, st: os.stat_result) -> str:
        key = str(path.resolve())
        rec = self.known.get(key)
        if isinstance(rec, list) and rec[:2] == [st.st_size, st.st_mtime_ns]:
            return rec[2]
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        self.known[key] = [st.st_size, st.st_mtime_ns, h.hexdigest()]
        self.dirty = True
        return h.hexdigest()

    def save(self) -> None:
        if self.path is not None and self.dirty:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.path, self.known)


def shared_files(pretrain_roots: list[Path], test_files: list[Path], cache_dir: Path | None) -> list[tuple[Path, Path]]:
    """(test file, pretraining file) pairs with the same content."""
    hashes = Hashes(cache_dir)
    by_size: dict[int, list[Path]] = {}
    for t in test_files:
        try:
            by_size.setdefault(os.stat(t).st_size, []).append(t)
        except OSError:
            continue
    test_digests: dict[str, Path] = {}
    found = []
    seen = {Path(t).resolve() for t in test_files}
    for root in pretrain_roots:
        for p in _walk(root):
            try:
                st = os.stat(p)
            except OSError:
                continue
            if st.st_size not in by_size or p.resolve() in seen:
                continue
            if not test_digests:
                test_digests = {hashes.digest(t, os.stat(t)): t for ts in by_size.values() for t in ts}
            d = hashes.digest(p, st)
            if d in test_digests:
                found.append((test_digests[d], p))
    hashes.save()
    return found


def overlap_warning(cfg: DictConfig, stage: str) -> str | None:
    """The warning for a fine-tune or probe whose pretraining corpus holds one of its test files, or
    None (no overlap, generated data, a baseline, or a given model file whose data is not known here)."""
    if stage not in ("finetune", "zeroshot") or cfg.data.generated or cfg.get("init_from"):
        return None
    from transfersep.data.index import DatasetError
    from transfersep.data.registry import index_from_cfg, roots_of

    try:
        test = index_from_cfg(cfg.downstream.dataset).split("test")
        roots = [Path(r) for r in roots_of(cfg.pretrain.dataset)]
    except (DatasetError, OSError, ValueError, KeyError):
        return None
    files = [Path(r.path) for t in test for refs in t.sources.values() for r in refs]
    pairs = shared_files([r for r in roots if r.is_dir()], files, Path(cfg.paths.cache_dir))
    if not pairs:
        return None
    named = ", ".join(f"{t} = {p}" for t, p in pairs[:NAMED]) + (
        f" and {len(pairs) - NAMED} more" if len(pairs) > NAMED else ""
    )
    return (
        f"the pretraining corpus ({cfg.pretrain.dataset.name}) holds {len(pairs)} test file(s) of "
        f"{cfg.downstream.dataset.name}: {named}; its test scores are not on unseen audio (remove them from "
        "the pretraining corpus, or test on another fold)"
    )
