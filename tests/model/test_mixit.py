"""The MixIT loss against a brute-force loop over every assignment, its minimum for a constructed
perfect separation worked out by hand from the formula, and its gradients with a silent reference."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from transfersep.model.mixit import assignment_matrix, mixit_loss, mixit_settings, output_names


def brute_force(est: torch.Tensor, refs: torch.Tensor, snr_max_db: float) -> tuple[float, list[tuple[int, ...]]]:
    """Mean over the batch of min over all assignments (a Python loop, explicit sums) of the summed
    negative thresholded SNR; and each example's best assignment (output -> reference)."""
    tau = 10 ** (-snr_max_db / 10)
    total, best_assignments = 0.0, []
    for b in range(est.shape[0]):
        best, best_a = math.inf, None
        for a in itertools.product((0, 1), repeat=est.shape[1]):
            loss = 0.0
            for j in (0, 1):
                y = refs[b, j].double()
                yhat = sum((est[b, m].double() for m in range(est.shape[1]) if a[m] == j), torch.zeros_like(y))
                ey, err = float((y**2).sum()), float(((y - yhat) ** 2).sum())
                loss += -10 * math.log10(ey / (err + tau * ey))
            if loss < best:
                best, best_a = loss, a
        total += best
        best_assignments.append(best_a)
    return total / est.shape[0], best_assignments


@pytest.mark.parametrize("b,m", [(1, 2), (3, 3), (2, 4), (5, 4)])
def test_loss_equals_the_brute_force_minimum(b, m):
    g = torch.Generator().manual_seed(10 * b + m)
    n = 400
    refs = torch.randn(b, 2, n, generator=g, dtype=torch.float64)
    # outputs that resemble pieces of the references, so the best assignment is not arbitrary
    est = 0.5 * refs[:, torch.randint(0, 2, (m,), generator=g)] + 0.7 * torch.randn(
        b, m, n, generator=g, dtype=torch.float64
    )
    for snr_max in (30.0, 10.0):
        expected, assignments = brute_force(est, refs, snr_max)
        loss, assignment = mixit_loss(est, refs, snr_max)
        assert loss.dtype == torch.float64
        assert float(loss) == pytest.approx(expected, rel=1e-9, abs=1e-7)
        assert assignment.dtype == torch.long and assignment.tolist() == [list(a) for a in assignments]


def test_a_perfect_separation_scores_the_minimum_with_its_assignment():
    g = torch.Generator().manual_seed(0)
    n, snr_max = 1000, 30.0
    parts = torch.randn(2, 4, n, generator=g, dtype=torch.float64)  # four outputs per example
    truth = torch.tensor([[1, 0, 0, 1], [0, 1, 1, 1]])  # the reference each output belongs to
    refs = torch.stack([torch.stack([parts[b, truth[b] == j].sum(0) for j in (0, 1)]) for b in range(2)])
    loss, assignment = mixit_loss(parts, refs, snr_max)
    # ||y - yhat|| = 0 for each reference: -10 log10(||y||^2 / (tau ||y||^2)) = -10 log10(10^3) = -30 dB
    # per reference, -60 for the pair, whatever the references' energies (EPS = 1e-8 added to energies
    # of about 1000 moves it by 1e-7 dB at most)
    assert float(loss) == pytest.approx(-60.0, abs=1e-6)
    assert torch.equal(assignment, truth)
    # any other assignment is worse; a perfect fit cannot score below the ceiling
    assert float(mixit_loss(parts * 1.01, refs, snr_max)[0]) > -60.0


def test_a_silent_reference_gives_finite_gradients():
    g = torch.Generator().manual_seed(1)
    est = torch.randn(3, 4, 256, generator=g, requires_grad=True)
    refs = torch.randn(3, 2, 256, generator=g)
    refs[0, 1] = 0.0  # one example with a silent second mixture
    refs[1] = 0.0  # one with both silent
    loss, _ = mixit_loss(est, refs)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(est.grad).all()
    assert est.grad[0].abs().sum() > 0 and est.grad[1].abs().sum() > 0  # silence is still pursued
    # silent outputs for silent references: 0 dB for each, no 0/0
    zero_loss, _ = mixit_loss(torch.zeros(1, 2, 16), torch.zeros(1, 2, 16))
    assert float(zero_loss) == pytest.approx(0.0, abs=1e-9)


def test_the_assignment_tensor_lists_every_assignment_once():
    a = assignment_matrix(3, 2)
    assert a.shape == (8, 2, 3)
    assert torch.equal(a.sum(1), torch.ones(8, 3))  # each output in exactly one group
    rows = {tuple(int(x) for x in r.argmax(0)) for r in a}
    assert rows == set(itertools.product((0, 1), repeat=3))
    assert assignment_matrix(2, 3).shape == (9, 3, 2)


def test_bad_shapes_and_settings_are_refused():
    with pytest.raises(ValueError, match=r"two reference mixtures \[B, 2, N\]"):
        mixit_loss(torch.zeros(2, 4, 10), torch.zeros(2, 3, 10))
    with pytest.raises(ValueError, match="pretrain.mixit.outputs"):
        mixit_settings({"outputs": 1})
    with pytest.raises(ValueError, match="pretrain.mixit.snr_max_db"):
        mixit_settings({"snr_max_db": -3})
    assert mixit_settings({"gain_db": 6.0}) == {"outputs": 4, "snr_max_db": 30.0, "gain_db": 6.0}
    assert output_names(3) == ["output1", "output2", "output3"]
