"""AutoClip (Seetharaman et al., MLSP 2020): clip to a percentile of all gradient norms so far.

Written here rather than taken from a library because the paper's semantics are exact: the
current norm is appended to the history *before* the threshold is taken, the history is every
norm since the start of training (not a window), and it must survive checkpoints so a resumed
run clips exactly as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch


class AutoClip:
    def __init__(self, percentile: float = 10.0):
        if not 0 < percentile <= 100:
            raise ValueError(f"autoclip percentile must be in (0, 100], got {percentile}")
        self.percentile = percentile
        self._history = np.empty(1024, dtype=np.float64)
        self._n = 0
        self.n_nonfinite = 0

    @property
    def history(self) -> np.ndarray:
        return self._history[: self._n]

    def _append(self, value: float) -> None:
        if self._n == len(self._history):
            self._history = np.resize(self._history, 2 * len(self._history))
        self._history[self._n] = value
        self._n += 1

    def __call__(self, parameters: Iterable[torch.nn.Parameter]) -> tuple[float, float]:
        """Record the global grad norm, clip to the percentile; returns (norm, threshold)."""
        params = [p for p in parameters if p.grad is not None]
        if not params:
            return 0.0, 0.0
        norm = torch.nn.utils.get_total_norm([p.grad for p in params]).item()
        if not np.isfinite(norm):
            # a non-finite norm would poison the history forever: drop this step's gradient
            self.n_nonfinite += 1
            for p in params:
                p.grad.zero_()
            return norm, 0.0
        self._append(norm)
        threshold = float(np.percentile(self.history, self.percentile))
        torch.nn.utils.clip_grads_with_norm_(params, threshold, torch.tensor(norm))
        return norm, threshold

    def state_dict(self) -> dict:
        return {"percentile": self.percentile, "history": self.history.tolist(), "n_nonfinite": self.n_nonfinite}

    def load_state_dict(self, state: dict) -> None:
        self.percentile = float(state["percentile"])
        hist = np.asarray(state["history"], dtype=np.float64)
        self._history = np.empty(max(1024, 2 * len(hist)), dtype=np.float64)
        self._history[: len(hist)] = hist
        self._n = len(hist)
        self.n_nonfinite = int(state.get("n_nonfinite", 0))
