"""The one DataModule every dataset uses, and the resumable step sampler.

Contract (relied on by model/system.py, evaluation/, inference/):
- an item is {"mix": FloatTensor[N], "sources": FloatTensor[C, N]}, 16 kHz mono, mix == sum(sources);
- a training set is map-style and item ``i`` is a deterministic function of (seed, i): there are
  no epochs in the paper's protocol, only an iteration budget, so the training stream is one long
  sequence of excerpts. Batch ``b`` of rank ``r`` (of ``W`` ranks) holds items
  ``(b*W + r)*B … (b*W + r + 1)*B - 1``. A run resumed at global step ``k`` starts at batch ``k``
  and sees exactly the excerpts an uninterrupted run would have seen (``StepSampler``);
- validation and test sets are fixed lists of excerpts chosen by seed (the test list of a
  downstream set is identical for every model, so per-excerpt scores pair up).
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Iterator, Sequence

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters (malloc.h)


def keep_freed_memory(mmap_threshold: int = 32 << 20, trim_threshold: int = 256 << 20) -> bool:
    """Make glibc reuse freed buffers of this process instead of handing them back to the kernel.

    Augmenting one ten-second excerpt allocates some twenty 2-8 MB temporaries (frames, spectra,
    phases). With glibc's defaults many come from freshly mapped pages that the kernel must fault
    in and zero again for every excerpt; served from the heap instead, the phase vocoder ran 7 %
    faster here (34.6 vs 37.3 ms an excerpt, medians of three alternating runs). At most
    ``trim_threshold`` bytes of freed memory stay with the process. Set in every DataLoader worker
    (``worker_init``); the training process keeps glibc's defaults. False where it does not apply.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(
            libc.mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold))
            and libc.mallopt(_M_TRIM_THRESHOLD, int(trim_threshold))
        )
    except (OSError, AttributeError):
        return False


def worker_init(_worker_id: int) -> None:
    keep_freed_memory()


class StepSampler(Sampler[int]):
    """Yields training indices from global step ``start_step`` up to ``total_steps``.

    ``__len__`` is the whole budget so Lightning's epoch length equals ``total_steps`` whether or
    not the run was resumed; iteration starts at the resumed position.
    """

    def __init__(self, batch_size: int, total_steps: int, start_step: int = 0, rank: int = 0, world_size: int = 1):
        self.batch_size = batch_size
        self.total_steps = total_steps
        self.start_step = start_step
        self.rank = rank
        self.world_size = world_size

    def __iter__(self) -> Iterator[int]:
        bs, w = self.batch_size, self.world_size
        for b in range(self.start_step, self.total_steps):
            first = (b * w + self.rank) * bs
            yield from range(first, first + bs)

    def __len__(self) -> int:
        return self.total_steps * self.batch_size


class StepLoader(DataLoader):
    """The training loader: a DataLoader that tells Lightning it resumes at the right batch.

    It does so by construction: its ``StepSampler`` starts at the trainer's global step and every
    excerpt is seeded by its index (``seeded_rng``). Lightning cannot know that and warns on every
    mid-epoch resume that the loader "is not resumable" unless it has the ``state_dict`` /
    ``load_state_dict`` pair; the state is informative only and loading it changes nothing.
    """

    def state_dict(self) -> dict:
        return {"start_step": int(getattr(self.sampler, "start_step", 0))}

    def load_state_dict(self, state_dict: dict) -> None:
        pass  # the position comes from the trainer's global step when the loader is built


class SeparationDataModule(L.LightningDataModule):
    """Train / val / test excerpt sets plus the source names, behind Lightning's interface."""

    def __init__(
        self,
        train: Dataset,
        val: Dataset,
        test: Dataset,
        source_names: Sequence[str],
        batch_size: int,
        total_steps: int,
        num_workers: int = 0,
        val_batch_size: int | None = None,
        description: dict | None = None,
    ):
        super().__init__()
        self.train_set, self.val_set, self.test_set = train, val, test
        self.source_names = list(source_names)
        self.batch_size = batch_size
        self.val_batch_size = val_batch_size or batch_size
        self.total_steps = total_steps
        self.num_workers = num_workers
        # what the loaders resolved (roots, track counts): logged to W&B and printed by --dry-run
        self.description = description or {}

    def _loader(self, ds: Dataset, batch_size: int, sampler: Sampler | None = None) -> DataLoader:
        return (StepLoader if isinstance(sampler, StepSampler) else DataLoader)(
            ds,
            batch_size=batch_size,
            sampler=sampler,
            shuffle=False,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            worker_init_fn=worker_init if self.num_workers > 0 else None,
            pin_memory=torch.cuda.is_available(),
            drop_last=False,
        )

    def train_dataloader(self) -> DataLoader:
        trainer = self.trainer
        step = trainer.global_step if trainer is not None else 0
        rank = trainer.global_rank if trainer is not None else 0
        world = trainer.world_size if trainer is not None else 1
        sampler = StepSampler(self.batch_size, self.total_steps, step, rank, world)
        return self._loader(self.train_set, self.batch_size, sampler)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, self.val_batch_size)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, self.val_batch_size)


def seeded_rng(seed: int, split: str, index: int) -> numpy.random.Generator:  # noqa: F821
    """The random stream of one excerpt: independent of worker count, order and resumption."""
    import zlib

    import numpy as np

    return np.random.default_rng([int(seed), zlib.crc32(split.encode()), int(index)])
