"""The loader workers' allocator setting: freed buffers are reused, not faulted in again."""

from __future__ import annotations

import subprocess
import sys

from transfersep.data.base import SeparationDataModule, worker_init

# ten 8-MB arrays alive at once, freed, then allocated again: page faults of the second round
PROBE = """
import resource, sys
import numpy as np
from transfersep.data.base import keep_freed_memory
if sys.argv[1] == "1":
    assert keep_freed_memory()
def round_():
    arrs = [np.ones(1 << 20) for _ in range(10)]
    del arrs
round_()
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
round_()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
"""


def _faults(tuned: bool) -> int:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, "1" if tuned else "0"], capture_output=True, text=True, check=True
    )
    return int(out.stdout.split()[-1])


def test_workers_reuse_freed_memory_instead_of_faulting_it_in():
    # glibc's defaults hand the 80 MB back (trim) and fault it in again; the workers' setting keeps it
    assert _faults(tuned=False) > 2000  # pages of 4 KiB: 20480 in 80 MB
    assert _faults(tuned=True) < 200


def test_worker_processes_get_the_setting():
    dm = SeparationDataModule([0] * 8, [0] * 2, [0] * 2, ["a"], batch_size=2, total_steps=3, num_workers=2)
    assert dm.val_dataloader().worker_init_fn is worker_init
    dm0 = SeparationDataModule([0] * 8, [0] * 2, [0] * 2, ["a"], batch_size=2, total_steps=3, num_workers=0)
    assert dm0.val_dataloader().worker_init_fn is None
