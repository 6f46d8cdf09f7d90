"""Losses against independent references: the naive (TF x TF) formula and hand-computed values."""

from __future__ import annotations

import pytest
import torch

from oracles import naive_dc
from transfersep.model import losses


def random_case(b=2, t=5, f=7, d=4, c=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    v = torch.nn.functional.normalize(torch.randn(b, t, f, d, generator=g, dtype=torch.float64), dim=-1)
    src = torch.rand(b, c, t, f, generator=g, dtype=torch.float64)
    return v, src


@pytest.mark.parametrize("weighted", [False, True])
def test_dc_low_rank_equals_naive(weighted):
    v, src = random_case()
    labels = losses.ideal_assignment(src)
    w = src.sum(1) if weighted else None
    got = losses.deep_clustering_loss(v, labels, 3, w)
    assert torch.allclose(got.double(), naive_dc(v, labels, 3, w), rtol=1e-9, atol=1e-12)


def test_dc_is_zero_for_ideal_embeddings():
    _, src = random_case(d=3)
    labels = losses.ideal_assignment(src)
    v = torch.nn.functional.one_hot(labels, 3).double()  # the embedding *is* the assignment
    for w in (None, src.sum(1)):
        assert losses.deep_clustering_loss(v, labels, 3, w).abs().item() < 1e-12


def test_dc_silent_source_keeps_shape_and_meaning():
    """A source silent in the batch still has its column in Y: same value as the naive formula
    with C given, and different from pretending the dataset had one source fewer."""
    v, src = random_case(c=3)
    src[:, 2] = 0.0  # third source silent everywhere
    labels = losses.ideal_assignment(src)
    assert labels.max() < 2
    got = losses.deep_clustering_loss(v, labels, 3, None)
    assert torch.allclose(got.double(), naive_dc(v, labels, 3, None), rtol=1e-9)


def test_dc_gradient_matches_naive():
    v, src = random_case()
    labels = losses.ideal_assignment(src)
    w = src.sum(1)
    v1 = v.clone().requires_grad_(True)
    v2 = v.clone().requires_grad_(True)
    losses.deep_clustering_loss(v1, labels, 3, w).backward()
    naive_dc(v2, labels, 3, w).backward()
    assert torch.allclose(v1.grad, v2.grad, rtol=1e-7, atol=1e-12)


def test_mi_loss_hand_computed():
    # B=1, C=2, T=1, F=2
    masks = torch.tensor([[[[0.5, 1.0]], [[0.25, 0.0]]]])
    mix = torch.tensor([[[2.0, 4.0]]])
    src = torch.tensor([[[[1.5, 3.0]], [[0.0, 1.0]]]])
    # |M X| = [[1, 4], [0.5, 0]] ; |.-S| = [[0.5, 1], [0.5, 1]] ; mean over 4 elements = 0.75
    assert losses.mask_inference_loss(masks, mix, src).item() == pytest.approx(0.75)


def test_chimera_weighting():
    dc, mi = torch.tensor(2.0), torch.tensor(4.0)
    assert losses.chimera_loss(dc, mi, 0.01).item() == pytest.approx(0.01 * 2 + 0.99 * 4)
