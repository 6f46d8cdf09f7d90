"""Folds over the test pieces of the small downstream sets (Bach10, Dagstuhl ChoirSet, stem folders).

One test piece makes a noisy recipe comparison, so each downstream loader declares several splits
of the same set: fold 0 is the paper's split, fold k moves the test part by a rule stated in the
loader's docstring, so that across the folds a piece is test at most once. The pretraining corpora
take fold 0 only: the study never tests on them.

The loader records the fold in the first note of its index (``note``); ``read`` gets it back, so
the record survives whatever copies an index (``mixtures.unlabeled``, ``--split``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from transfersep.data.index import DatasetError, DatasetIndex, Track

_NOTE_RE = re.compile(r"^fold (\d+) of (\d+) ")


@dataclass(frozen=True)
class FoldInfo:
    """The fold an index was built for, how many its dataset declares, and its split's size."""

    fold: int
    n_folds: int
    n_train: int
    n_test: int
    test: tuple[str, ...]  # names of the test tracks


def check(fold: Any, dataset: str) -> int:
    """``fold`` as an int >= 0, or a one-line DatasetError (a config may hand over a string)."""
    if isinstance(fold, bool) or not isinstance(fold, int) or fold < 0:
        raise DatasetError(f"{dataset}: fold={fold!r}: expected an integer >= 0 (0 is the paper's split)")
    return fold


def span(n: int) -> str:
    """``folds 0..n-1``, or ``fold 0 only``."""
    return "fold 0 only" if n <= 1 else f"folds 0..{n - 1}"


def refuse(dataset: str, fold: int, n: int, why: str) -> DatasetError:
    """The one-line error of a fold outside 0..n-1; ``why`` says where the count comes from."""
    allowed = "0" if n <= 1 else f"0..{n - 1}"
    return DatasetError(f"{dataset}: fold {fold} out of range: {why}; set fold={allowed}")


def note(fold: int, n: int, what: str, tracks: Sequence[Track]) -> str:
    """The index note recording the fold (``read`` parses its start: keep the two in step)."""
    test = [t.name for t in tracks if t.split == "test"]
    n_train = sum(t.split == "train" for t in tracks)
    return f"fold {fold} of {n} ({span(n)}): test {what} {test}; {n_train} train / {len(test)} test tracks"


def read(index: DatasetIndex) -> FoldInfo:
    """The fold record of ``index``; an index without one (a pretraining corpus) is fold 0 of 1."""
    fold, n = 0, 1
    for line in index.notes:
        m = _NOTE_RE.match(line)
        if m:
            fold, n = int(m[1]), int(m[2])
            break
    test = tuple(t.name for t in index.split("test"))
    return FoldInfo(fold, n, len(index.split("train")), len(test), test)
