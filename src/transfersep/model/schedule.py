"""The paper's learning-rate rule: halve the rate once the validation loss has not improved for
``optim.plateau_patience_steps`` iterations.

The rule is counted in iterations, the scheduler in validations (one every ``val_every_n_steps``).
torch's ``ReduceLROnPlateau`` reduces on the validation that makes its count of bad validations
exceed ``patience``: with the best loss at iteration 100 and a validation every 100, the
validations at 200 ... 600 are bad, and the one at 600 is the fifth, 500 iterations after the best.
So ``patience`` = 500 / 100 − 1 = 4 bad validations are tolerated and the fifth halves the rate;
after a reduction the count restarts, so a loss that stays flat halves the rate again 500
iterations later. A patience that is not a whole number of validations has no such iteration and
is refused.
"""

from __future__ import annotations

from typing import Any


class ScheduleError(ValueError):
    """The plateau patience and the validation interval do not fit together (message names both keys)."""


def plateau_patience(patience_steps: int, val_every_n_steps: int) -> int:
    """``ReduceLROnPlateau(patience=...)`` for a plateau of ``patience_steps`` iterations with a
    validation every ``val_every_n_steps`` iterations."""
    patience_steps, val_every_n_steps = int(patience_steps), int(val_every_n_steps)
    if val_every_n_steps < 1:
        raise ScheduleError(f"val_every_n_steps={val_every_n_steps}: must be at least 1")
    if patience_steps < val_every_n_steps or patience_steps % val_every_n_steps:
        raise ScheduleError(
            f"optim.plateau_patience_steps={patience_steps} is not a whole multiple of val_every_n_steps="
            f"{val_every_n_steps}: the learning rate can only halve at a validation; set one so that "
            "val_every_n_steps divides optim.plateau_patience_steps"
        )
    return patience_steps // val_every_n_steps - 1


def plateau_scheduler(optimizer: Any, patience_steps: int, val_every_n_steps: int, factor: float) -> Any:
    """``ReduceLROnPlateau`` of the rule above for a torch optimizer, to be stepped once per
    validation with the validation loss."""
    import torch  # this module stays importable without torch (run/plan.py checks the pair early)

    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=factor, patience=plateau_patience(patience_steps, val_every_n_steps)
    )
