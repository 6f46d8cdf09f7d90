"""Parsed scores for the planners: parsing runs in the worker pool and is cached per build."""

from __future__ import annotations

from concurrent.futures import Executor

import numpy as np

from transfersep.demo import scores

_SALT = {"chorales": 7, "quartets": 8}


class Library:
    """Hands planners parsed pieces; the pretraining pool is split between Slakh and MUSDB by seed.

    Chorale pool: every Bach file not reserved downstream, shuffled by the seed; even positions are
    Slakh's, odd MUSDB's, each taken in order and skipping any that is not a four-part score.
    Quartet pool: ``scores.PRETRAIN_QUARTETS`` shuffled by the seed; two of every three Slakh's.
    The split does not depend on which datasets a call builds, so ``--only`` changes nothing.
    """

    def __init__(self, executor: Executor, seed: int):
        self.executor, self.seed = executor, seed
        self._cache: dict[str, scores.Piece] = {}

    def pieces(self, works: list[str]) -> list[scores.Piece]:
        todo = [w for w in dict.fromkeys(works) if w not in self._cache]
        for w, piece in zip(todo, self.executor.map(scores.load_piece, todo)):
            self._cache[w] = piece
        return [self._cache[w] for w in works]

    def _share(self, kind: str, corpus: str) -> list[str]:
        if kind == "chorales":
            pool = scores.pretrain_chorale_candidates()
            keep = (lambda i: i % 2 == 0) if corpus == "slakh" else (lambda i: i % 2 == 1)
        else:
            pool = list(scores.PRETRAIN_QUARTETS)
            keep = (lambda i: i % 3 != 2) if corpus == "slakh" else (lambda i: i % 3 == 2)
        order = np.random.default_rng([self.seed, _SALT[kind]]).permutation(len(pool))
        return [pool[j] for i, j in enumerate(order) if keep(i)]

    def chorales(self, corpus: str, n: int) -> list[scores.Piece]:
        """The first ``n`` four-part chorales of ``corpus``'s share ('slakh' or 'musdb')."""
        share, found, pos = self._share("chorales", corpus), [], 0
        while len(found) < n:
            if pos >= len(share):
                raise RuntimeError(f"only {len(found)} four-part chorales for {corpus}; asked for {n}")
            batch = share[pos : pos + max(4, n - len(found) + 2)]
            pos += len(batch)
            found += [p for p in self.pieces(batch) if scores.is_four_part(p)]
        return found[:n]

    def quartets(self, corpus: str, n: int) -> list[scores.Piece]:
        """``n`` quartet movements from ``corpus``'s share, cycling when ``n`` exceeds it."""
        if n <= 0:
            return []
        share = self._share("quartets", corpus)
        return self.pieces([share[i % len(share)] for i in range(n)])
