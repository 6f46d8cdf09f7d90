"""The plateau rule of the paper, through Lightning as train.py wires it: the learning rate halves
once the validation loss has not improved for ``optim.plateau_patience_steps`` iterations."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from transfersep.model.schedule import ScheduleError, plateau_patience
from transfersep.model.system import SeparationSystem
from transfersep.run.plan import make_plan
from transfersep.run.point import PlanError

TINY = {"hidden_size": 4, "num_layers": 1, "embedding_dim": 2}


class Mixes(Dataset):
    def __len__(self) -> int:
        return 100_000

    def __getitem__(self, i: int) -> dict:
        return {"mix": torch.zeros(8)}


class Scripted(SeparationSystem):
    """The real optimiser and scheduler of SeparationSystem; a validation loss read from a script
    {iteration: loss} (the last scripted value holds until the next one), a trivial training loss."""

    def __init__(self, script: dict[int, float], **kw):
        super().__init__(**kw)
        self.script = script

    def compute_losses(self, batch: dict) -> dict:
        if self.training:
            return {"loss": sum((p**2).sum() for p in self.trainable_parameters())}
        step = self.trainer.global_step
        value = self.script[max(s for s in self.script if s <= step)]
        return {"loss": torch.tensor(value)}


class LrAt(L.Callback):
    """lr in force after every effect of iteration s (validation, scheduler step) = at the start of s+1."""

    def __init__(self) -> None:
        self.lr: dict[int, float] = {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.lr[trainer.global_step] = trainer.optimizers[0].param_groups[0]["lr"]


def lr_after_validations(val_every: int, patience_steps: int, script: dict[int, float], last: int) -> dict[int, float]:
    system = Scripted(
        script,
        model=TINY,
        phase="whole",
        source_names=["a", "b"],
        lr=1e-3,
        plateau_patience_steps=patience_steps,
        plateau_factor=0.5,
        val_every_n_steps=val_every,
    )
    system.train_dataloader = lambda: DataLoader(Mixes(), batch_size=1)
    system.val_dataloader = lambda: DataLoader(Mixes(), batch_size=1)
    cb = LrAt()
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=last + 1,
        val_check_interval=val_every,
        limit_val_batches=1,
        check_val_every_n_epoch=None,
        num_sanity_val_steps=0,
        callbacks=[cb],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(system)
    return {s: cb.lr[s] for s in range(val_every, last + 1, val_every)}


def test_paper_rule_halves_500_iterations_after_the_best() -> None:
    # best at iteration 100, flat after: halved at 600, and again 500 iterations later
    table = {
        100: 1e-3,
        200: 1e-3,
        300: 1e-3,
        400: 1e-3,
        500: 1e-3,
        600: 5e-4,
        700: 5e-4,
        800: 5e-4,
        900: 5e-4,
        1000: 5e-4,
        1100: 2.5e-4,
    }
    assert lr_after_validations(100, 500, {0: 1.0}, 1100) == pytest.approx(table, rel=1e-12)


def test_demo_pair_with_an_improvement_restarting_the_count() -> None:
    # validation every 50, patience 250: best at 100 -> halved at 350; a new best at 400 -> halved at 650
    script = {0: 2.0, 100: 1.0, 400: 0.5}
    table = {
        50: 1e-3,
        100: 1e-3,
        150: 1e-3,
        200: 1e-3,
        250: 1e-3,
        300: 1e-3,
        350: 5e-4,
        400: 5e-4,
        450: 5e-4,
        500: 5e-4,
        550: 5e-4,
        600: 5e-4,
        650: 2.5e-4,
        700: 2.5e-4,
    }
    assert lr_after_validations(50, 250, script, 700) == pytest.approx(table, rel=1e-12)


def test_patience_of_one_validation_halves_on_the_first_bad_one() -> None:
    table = {100: 1e-3, 200: 5e-4, 300: 2.5e-4}
    assert lr_after_validations(100, 100, {0: 1.0}, 300) == pytest.approx(table, rel=1e-12)


@pytest.mark.parametrize("patience,every", [(500, 300), (250, 100), (50, 100), (0, 100)])
def test_a_pair_that_does_not_divide_is_refused(patience: int, every: int, tiny_cfg) -> None:
    with pytest.raises(ScheduleError) as err:
        plateau_patience(patience, every)
    msg = str(err.value)
    assert "\n" not in msg and "optim.plateau_patience_steps" in msg and "val_every_n_steps" in msg
    cfg = tiny_cfg(f"optim.plateau_patience_steps={patience}", f"val_every_n_steps={every}")
    with pytest.raises(PlanError, match="optim.plateau_patience_steps"):
        make_plan(cfg)  # before anything is written, dry runs included
