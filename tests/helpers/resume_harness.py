"""``python tests/helpers/resume_harness.py SIGNAL STEP <train.py overrides>``: train.py's main, except that
right after optimiser step STEP the process sends SIGNAL (KILL, TERM, USR1, USR2) to itself: a kill
or a preemption at a known point of training, so the resume tests do not depend on timing.
"""

import os
import signal
import sys

from transfersep.cli.train import main
from transfersep.run.resume import ResumableCheckpoint

SIG = signal.Signals["SIG" + sys.argv[1]]
STEP = int(sys.argv[2])
sys.argv = [sys.argv[0], *sys.argv[3:]]


def _send(self, trainer, pl_module, outputs, batch, batch_idx):  # noqa: ANN001
    if trainer.global_step == STEP:
        os.kill(os.getpid(), SIG)


ResumableCheckpoint.on_train_batch_end = _send

if __name__ == "__main__":
    main()
