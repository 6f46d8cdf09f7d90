from __future__ import annotations

import numpy as np
import pytest
import torch

from transfersep.model.autoclip import AutoClip


def test_threshold_is_numpy_percentile_of_history_including_current():
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.zeros(5))
    clip = AutoClip(10)
    norms = []
    for scale in [3.0, 0.5, 8.0, 1.0, 2.0, 0.1, 5.0]:
        p.grad = torch.randn(5) * scale
        raw = p.grad.norm().item()
        norms.append(raw)
        norm, thr = clip([p])
        assert norm == pytest.approx(raw, rel=1e-6)
        assert thr == pytest.approx(np.percentile(norms, 10), rel=1e-12)
        assert p.grad.norm().item() == pytest.approx(min(raw, thr), rel=1e-4)
    np.testing.assert_allclose(clip.history, norms, rtol=1e-6)


def test_state_round_trip_continues_identically():
    a, b = AutoClip(10), AutoClip(10)
    p = torch.nn.Parameter(torch.zeros(3))
    for s in [1.0, 4.0, 2.0]:
        p.grad = torch.full((3,), s)
        a([p])
    b.load_state_dict(a.state_dict())
    p.grad = torch.full((3,), 0.7)
    _, ta = a([p])
    p.grad = torch.full((3,), 0.7)
    _, tb = b([p])
    assert ta == tb and len(a.history) == len(b.history) == 4


def test_nonfinite_norm_does_not_enter_history():
    clip = AutoClip(10)
    p = torch.nn.Parameter(torch.zeros(2))
    p.grad = torch.tensor([1.0, float("nan")])
    clip([p])
    assert len(clip.history) == 0 and clip.n_nonfinite == 1 and torch.all(p.grad == 0)
