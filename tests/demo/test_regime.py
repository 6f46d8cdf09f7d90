"""The regime table's ratios against the paper's figures worked out by hand."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from transfersep.demo.regime import _params, ratios


def test_paper_ratios_by_hand():
    cfg = OmegaConf.create(
        {
            "data": {"batch_size": 24, "excerpt_seconds": 10.0},
            "budget": {"pretrain": 10000, "finetune": 2000, "baseline": 12000},
        }
    )
    r = ratios(cfg, params=27_200_000, pretrain_s=7830 * 60, down_s=300)
    # 16 kHz / hop 128 = 125 frames a second, 257 bins a frame
    assert r["params_per_bin"] == pytest.approx(27.2e6 / (300 * 125 * 257))  # ~2.8
    assert r["baseline_passes"] == pytest.approx(12000 * 24 * 10 / 300) == 9600
    assert r["pretrain_passes"] == pytest.approx(10000 * 240 / (7830 * 60))  # ~5.1
    assert r["audio_ratio"] == pytest.approx(7830 * 60 / 300)


def test_paper_model_size():
    model = OmegaConf.load("conf/model/chimera.yaml")
    # 4 BLSTM layers of 500 units a direction on 257 bins, D = 20 embedding head, 4-source mask head:
    # LSTM 2 * 4 * 500 * (257 + 500 + 2) + 3 * 2 * 4 * 500 * (1000 + 500 + 2), heads 1000 * 257 * 24 + 257 * 24,
    # input norm 2 * 257
    lstm = 2 * 4 * 500 * (257 + 500 + 2) + 3 * 2 * 4 * 500 * (1000 + 500 + 2)
    heads = (1000 + 1) * 257 * (20 + 4)
    assert _params(model, 4) == lstm + heads + 2 * 257
