"""The SI-SDR path against a naive numpy formula, and the silent-reference rule."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from oracles import naive_sisdr
from transfersep.evaluation.sisdr import SISDR_FLOOR_DB, batch_sisdr, excerpt_means, silent_reference, summarize


def test_batch_sisdr_matches_numpy():
    rng = np.random.default_rng(0)
    B, C, N = 3, 4, 4000
    ref = rng.normal(size=(B, C, N)).astype(np.float32) + 0.3  # a DC offset that zero_mean removes
    # estimates at different SNRs and scales (SI-SDR ignores the scale)
    est = np.stack([ref[:, c] * (c + 0.5) + rng.normal(size=(B, N)) * 10 ** (-c / 2) for c in range(C)], 1)
    est = est.astype(np.float32)
    scores, silent = batch_sisdr(torch.from_numpy(est), torch.from_numpy(ref))
    assert scores.dtype == torch.float64 and scores.shape == (B, C)
    assert not silent.any()
    want = np.array([[naive_sisdr(est[b, c], ref[b, c]) for c in range(C)] for b in range(B)])
    np.testing.assert_allclose(scores.numpy(), want, atol=1e-6)
    # noise falls by 10 dB per source index, so SI-SDR rises by about 10 dB per source
    assert np.all(np.diff(want, axis=1) > 7)


def test_known_value():
    # est = ref + orthogonal noise of a quarter of its energy: SI-SDR = 10 log10(4) exactly
    n = 1000
    t = np.arange(n)
    ref = np.sin(2 * np.pi * 5 * t / n)
    noise = 0.5 * np.sin(2 * np.pi * 11 * t / n)  # orthogonal, same energy scale
    est = ref + noise
    s, _ = batch_sisdr(torch.tensor(est)[None, None], torch.tensor(ref)[None, None])
    assert s.item() == pytest.approx(10 * np.log10(4), abs=1e-9)


def test_silent_reference_rule():
    rng = np.random.default_rng(1)
    N = 16000
    loud = rng.normal(size=N) * 0.1  # -20 dBFS
    quiet = rng.normal(size=N) * 10 ** (-70 / 20)  # -70 dBFS: silent
    just_above = rng.normal(size=N) * 10 ** (-55 / 20)  # -55 dBFS: scored
    dc_only = np.full(N, 0.5)  # a constant is silence once the mean is removed
    zeros = np.zeros(N)
    ref = torch.tensor(np.stack([loud, quiet, just_above, dc_only, zeros]))[None]
    est = ref + torch.tensor(rng.normal(size=(1, 5, N)) * 0.01)
    scores, silent = batch_sisdr(est, ref)
    assert silent.tolist() == [[False, True, False, True, True]]
    assert torch.isnan(scores[0, [1, 3, 4]]).all()
    assert torch.isfinite(scores[0, [0, 2]]).all()
    assert silent_reference(torch.tensor(quiet), silence_db=-80.0).item() is False


def test_silent_estimates_stay_finite():
    rng = np.random.default_rng(2)
    ref = torch.tensor(rng.normal(size=(1, 2, 8000)))
    est = torch.zeros_like(ref)
    est[0, 1] = 1e-12 * torch.tensor(rng.normal(size=8000))  # near-silent noise: very bad, finite
    scores, silent = batch_sisdr(est, ref)
    assert torch.isfinite(scores).all() and not silent.any()
    # an all-zero estimate holds none of its source: -inf, clipped at the floor (not eps's 0 dB)
    assert scores[0, 0].item() == SISDR_FLOOR_DB == -60.0
    # a quiet estimate gets its exact value (SI-SDR is scale-invariant), not the eps-driven 0 dB
    assert scores[0, 1].item() == pytest.approx(naive_sisdr(est[0, 1].numpy(), ref[0, 1].numpy()), abs=1e-6)
    assert scores[0, 1].item() < -10


def test_excerpt_means_and_summary_exclude_silent():
    s = np.array([[1.0, np.nan, 3.0], [np.nan, np.nan, np.nan], [-2.0, 4.0, 0.0]])
    m = excerpt_means(s)
    np.testing.assert_allclose(m[[0, 2]], [2.0, 2.0 / 3.0])
    assert np.isnan(m[1])
    st = summarize(m)
    assert st["n"] == 2 and st["mean"] == pytest.approx((2 + 2 / 3) / 2)
    assert st["std"] == pytest.approx(np.std([2.0, 2 / 3], ddof=1))
    assert summarize(np.array([np.nan])) == {"mean": None, "median": None, "std": None, "n": 0}


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shape"):
        batch_sisdr(torch.zeros(1, 2, 10), torch.zeros(1, 3, 10))


def test_the_floor_clips_every_estimate_and_silence_scores_it():
    n = 16000
    t = np.arange(n)
    ref = np.sin(2 * np.pi * 5 * t / n)
    ortho = np.cos(2 * np.pi * 5 * t / n)  # orthogonal over whole periods: naive SI-SDR is -inf
    rng = np.random.default_rng(3)
    poor = ref + 10.0 * rng.normal(size=n)  # a genuine, poor estimate: about -17 dB
    est = torch.tensor(np.stack([np.zeros(n), ortho, poor]))[None]
    scores, _ = batch_sisdr(est, torch.tensor(np.stack([ref, ref, ref]))[None])
    assert naive_sisdr(ortho, ref) < -200
    assert scores[0, 0].item() == scores[0, 1].item() == SISDR_FLOOR_DB
    assert scores[0, 2].item() == pytest.approx(naive_sisdr(poor, ref), abs=1e-6) and scores[0, 2] > SISDR_FLOOR_DB
