"""A warning when the pretraining audio holds a downstream test file (same bytes, any name)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import datatrees
from transfersep.data import overlap
from transfersep.data.registry import index_from_cfg
from transfersep.run.config import compose


def _cfg(tmp_path: Path, *extra: str):
    return compose(
        [
            "pretrain=mixtures",
            "objective=mixit",
            f"paths.mixtures={tmp_path / 'mix'}",
            "downstream=stems",
            f"paths.stems={tmp_path / 'stems'}",
            f"paths.cache_dir={tmp_path / 'cache'}",
            "downstream.dataset.sources=[lead,rhythm]",
            "downstream.dataset.patterns={lead: ['*vocals*'], rhythm: ['*gtr*']}",
            "finetune=whole",
            *extra,
        ]
    )


def test_a_test_file_inside_the_pretraining_corpus_is_found_by_content(tmp_path: Path, monkeypatch) -> None:
    for i in range(3):
        for stem in ("vocals", "gtr"):
            datatrees.write(
                tmp_path / "stems" / f"song{i}" / f"{stem}.wav", datatrees.noise(f"{i}{stem}", 1.0, 16000), 16000
            )
    for i in range(4):
        datatrees.write(tmp_path / "mix" / f"m{i}.wav", datatrees.noise(f"m{i}", 1.1 + i / 10, 16000), 16000)
    reads: list[int] = []  # files actually read and hashed
    real = overlap.hashlib.sha256
    monkeypatch.setattr(overlap, "hashlib", SimpleNamespace(sha256=lambda: reads.append(1) or real()))
    cfg = _cfg(tmp_path)
    assert overlap.overlap_warning(cfg, "finetune") is None
    assert reads == []  # no pretraining file has a test file's size: nothing is read

    test = index_from_cfg(cfg.downstream.dataset).split("test")
    leaked = Path(test[0].sources["lead"][0].path)
    shutil.copy(leaked, tmp_path / "mix" / "renamed copy.wav")
    warning = overlap.overlap_warning(cfg, "finetune")
    assert warning is not None and "holds 1 test file(s) of stems" in warning
    assert f"{leaked} = {tmp_path / 'mix' / 'renamed copy.wav'}" in warning and "\n" not in warning
    # only files of a test file's size are read, and each once: the digests are cached by (path, size, mtime)
    cache = json.loads((tmp_path / "cache" / overlap.CACHE).read_text())
    assert str((tmp_path / "mix" / "renamed copy.wav").resolve()) in cache
    assert len(reads) == 3  # the two test files (of one size) and the copy; no other file is read
    assert overlap.overlap_warning(cfg, "zeroshot") == warning
    assert len(reads) == 3  # asked again: answered from the cache
    assert overlap.overlap_warning(cfg, "baseline") is None  # no pretraining
    assert overlap.overlap_warning(_cfg(tmp_path, "init_from=/some/model.safetensors"), "finetune") is None
