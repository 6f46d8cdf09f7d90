"""Grouping M outputs onto C references, against a brute-force loop over every assignment scored
with the naive SI-SDR formula."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from oracles import naive_sisdr
from transfersep.evaluation.grouping import group_to_references


def brute_force(est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Per excerpt, the sums of the assignment (each output to one reference) with the highest mean
    SI-SDR over the audible references (RMS of the mean-removed reference >= -60 dBFS), each SI-SDR
    clipped below at -60 dB and a silent sum scoring -60 dB."""
    out = torch.empty(ref.shape, dtype=est.dtype)
    for b in range(est.shape[0]):
        r = ref[b].double().numpy()
        audible = [c for c in range(r.shape[0]) if 20 * math.log10(np.std(r[c]) + 1e-300) >= -60]
        best, best_sums = -math.inf, None
        for a in itertools.product(range(ref.shape[1]), repeat=est.shape[1]):
            sums = [
                sum(
                    (est[b, m].double() for m in range(est.shape[1]) if a[m] == c),
                    torch.zeros(ref.shape[-1], dtype=torch.float64),
                )
                for c in range(ref.shape[1])
            ]
            scores = []
            for c in audible:
                s = sums[c].numpy()
                scores.append(-60.0 if not np.any(s - s.mean()) else max(-60.0, naive_sisdr(s, r[c])))
            score = float(np.mean(scores)) if scores else 0.0
            if score > best:
                best, best_sums = score, sums
        out[b] = torch.stack(best_sums).to(est.dtype)
    return out


@pytest.mark.parametrize("m,c", [(2, 2), (3, 2), (4, 3), (4, 4), (3, 4)])
def test_grouping_equals_the_brute_force_best(m, c):
    g = torch.Generator().manual_seed(m * 10 + c)
    b, n = 3, 600
    ref = torch.randn(b, c, n, generator=g)
    # each output a noisy piece of a random reference (some references may get none)
    owner = torch.randint(0, c, (b, m), generator=g)
    est = torch.stack([0.6 * ref[i, owner[i]] for i in range(b)]) + 0.8 * torch.randn(b, m, n, generator=g)
    out = group_to_references(est, ref)
    assert out.shape == (b, c, n) and out.dtype == est.dtype
    torch.testing.assert_close(out, brute_force(est, ref), rtol=0, atol=1e-6)


def test_a_perfect_grouping_is_found_and_a_silent_reference_does_not_steer_it():
    g = torch.Generator().manual_seed(5)
    parts = torch.randn(1, 4, 500, generator=g)
    ref = torch.stack([parts[0, [0, 2]].sum(0), parts[0, 1], parts[0, 3]])[None]  # [1, 3, N]
    torch.testing.assert_close(group_to_references(parts, ref), ref, rtol=0, atol=1e-6)
    # the third source silent: output 3 must still not spoil an audible reference
    quiet = ref.clone()
    quiet[0, 2] = 0.0
    out = group_to_references(parts, quiet)
    assert torch.allclose(out[0, 0], ref[0, 0], atol=1e-6) and torch.allclose(out[0, 1], ref[0, 1], atol=1e-6)
    assert torch.equal(out[0, 2], parts[0, 3])  # the one place it spoils nothing


def test_grouping_keeps_full_precision_under_bf16_autocast():
    g = torch.Generator().manual_seed(2)
    est, ref = torch.randn(2, 3, 400, generator=g), torch.randn(2, 2, 400, generator=g)
    expected = group_to_references(est, ref)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = group_to_references(est, ref)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, expected, rtol=0, atol=0)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match=r"outputs \[B, M, N\]"):
        group_to_references(torch.zeros(2, 4, 10), torch.zeros(2, 2, 11))
