"""The SI-SDR curve callback inside a real (tiny) Lightning fit."""

from __future__ import annotations

import csv
import random
from types import SimpleNamespace

import lightning as L
import numpy as np
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader

from eval_helpers import ListDataset, make_items
from oracles import naive_sisdr
from transfersep.evaluation.curve import SISDRCurve

N = 256


class TinySystem(L.LightningModule):
    """est_c = w_c * mix: learns the source gains. ``separate`` draws random numbers on purpose
    (as a dithering or sampling separator could) so that an unrestored RNG would change training."""

    source_names = ["a", "b", "c"]

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.full((3, 1), 0.1))
        self.drop = nn.Dropout(0.5)
        self.frozen = nn.Linear(1, 1)
        self.modes_seen_in_separate: list[tuple[bool, bool]] = []

    def separate(self, mix):
        torch.rand(1), np.random.rand(), random.random()
        self.modes_seen_in_separate.append((self.training, self.frozen.training))
        return self.w[None] * mix[:, None, :]

    def on_train_start(self):
        self.frozen.eval()  # like the mask fine-tune: a part that stays in eval mode

    def training_step(self, batch, _):
        assert self.training and not self.frozen.training
        noise = 0.01 * torch.randn_like(batch["mix"])  # RNG-dependent training
        est = self.drop(self.w[None].expand(batch["mix"].shape[0], -1, -1)) * (batch["mix"] + noise)[:, None]
        return (est - batch["sources"]).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=5.0)


def fit(tmp_path, items, callback: bool, steps: int = 6):
    L.seed_everything(0, verbose=False)
    model = TinySystem()
    cbs = [SISDRCurve(ListDataset(items), tmp_path, every_n_steps=2, n_excerpts=3, batch_size=2)] if callback else []
    trainer = L.Trainer(
        max_steps=steps,
        logger=CSVLogger(tmp_path, name="logs"),
        callbacks=cbs,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        devices=1,
        log_every_n_steps=1,
    )
    trainer.fit(model, DataLoader(ListDataset(items), batch_size=2, shuffle=True))
    return model, trainer


@pytest.fixture(scope="module")
def items():
    return make_items([N] * 8, silent=[(0, 1)])


def test_curve_rows_logging_and_no_side_effects(tmp_path, items):
    plain, _ = fit(tmp_path / "plain", items, callback=False)
    model, trainer = fit(tmp_path / "curve", items, callback=True)
    # training is bit-identical with and without the callback (RNG states restored)
    assert torch.equal(plain.w, model.w)
    # separate ran in eval mode every time; modes restored afterwards (the frozen part stays eval)
    assert model.modes_seen_in_separate and all(m == (False, False) for m in model.modes_seen_in_separate)
    assert model.training and not model.frozen.training

    with open(tmp_path / "curve" / "curve.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["step", "sisdr_db", "sisdr_db_a", "sisdr_db_b", "sisdr_db_c"]
    assert [int(r["step"]) for r in rows] == [0, 2, 4, 6]

    # the last row is the final model, scored independently with numpy on the first 3 excerpts
    w = model.w.detach().numpy()[:, 0]
    sc = np.full((3, 3), np.nan)
    for e in range(3):
        mix, src = items[e]["mix"].numpy(), items[e]["sources"].numpy()
        for c in range(3):
            if np.abs(src[c]).sum() > 0:
                sc[e, c] = naive_sisdr(w[c] * mix, src[c])
    per_excerpt = [np.mean(r[~np.isnan(r)]) for r in sc]
    assert float(rows[-1]["sisdr_db"]) == pytest.approx(np.mean(per_excerpt), abs=1e-6)
    assert float(rows[-1]["sisdr_db_b"]) == pytest.approx(np.nanmean(sc[:, 1]), abs=1e-6)

    with open(tmp_path / "curve" / "logs" / "version_0" / "metrics.csv", newline="") as f:
        logged = [r for r in csv.DictReader(f) if r.get("curve/sisdr")]
    assert [int(r["step"]) for r in logged] == [0, 2, 4, 6]
    assert [float(r["curve/sisdr"]) for r in logged] == pytest.approx([float(r["sisdr_db"]) for r in rows])


def test_resume_keeps_rows_up_to_the_resumed_step(tmp_path, items):
    path = tmp_path / "curve.csv"
    path.write_text(
        "step,sisdr_db,sisdr_db_a,sisdr_db_b,sisdr_db_c\n"
        + "".join(f"{s},{s / 100},1,2,3\n" for s in (0, 100, 200, 300))
    )
    cb = SISDRCurve(ListDataset(items), tmp_path, every_n_steps=100, n_excerpts=2)
    module = TinySystem()
    trainer = SimpleNamespace(global_step=200, is_global_zero=True, loggers=[], callback_metrics={})
    cb.on_train_start(trainer, module)  # step 200 is already scored: nothing recomputed
    assert [r["step"] for r in cb.rows] == [0, 100, 200] and not module.modes_seen_in_separate
    trainer.global_step = 300
    cb.on_train_batch_end(trainer, module, None, None, 0)
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [0, 100, 200, 300]
    assert float(rows[-1]["sisdr_db"]) != 3.0  # recomputed, not the stale row
    assert "curve/sisdr" in trainer.callback_metrics
