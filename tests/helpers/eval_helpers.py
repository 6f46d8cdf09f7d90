"""Helpers shared by the eval tests: the naive SI-SDR reference and a list-backed test set."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

NAMES = ["a", "b", "c"]


class ListDataset(Dataset):
    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def make_items(lengths, silent=()):
    rng = np.random.default_rng(5)
    items = []
    for i, n in enumerate(lengths):
        src = rng.normal(size=(len(NAMES), n)).astype(np.float32) * 0.1
        for e, c in silent:
            if e == i:
                src[c] = 0.0
        s = torch.from_numpy(src)
        items.append({"mix": s.sum(0), "sources": s})
    return items
