"""Every fast path against an independent plain one. Tiny sizes, CPU.

Tolerances (stated in docs/performance.md too):
  fp32 fast DC loss vs the naive (TF x TF) formula in fp64: rel 1e-5 (value and gradient);
  bf16 embedding into the fast DC loss: rel 1e-3 of the loss, gradient within 2e-2 of its scale;
  fused sigmoid + unit norm, direction-parallel BLSTM, whole training step: 1e-5 of scale (fp32).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as nnf

from oracles import naive_dc
from transfersep.bench.plain import plain_compute_losses
from transfersep.model import ChimeraConfig, ChimeraNet, losses
from transfersep.model.fast import blstm_parallel, sigmoid_unit_norm
from transfersep.model.system import SeparationSystem


@pytest.fixture
def two_threads():
    """The thread-split paths only engage with >= 2 intra-op threads (conftest sets 1)."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def case(b=2, t=6, f=9, d=5, c=3, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    v = nnf.normalize(torch.sigmoid(4 * torch.randn(b, t, f, d, generator=g)), dim=-1).to(dtype)
    src = torch.rand(b, c, t, f, generator=g)
    return v, src


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).abs().max() / b.double().abs().max()).item()


# -- labels ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("c", [1, 2, 3, 5])
def test_ideal_assignment_equals_argmax_with_ties(c):
    g = torch.Generator().manual_seed(c)
    src = torch.randint(0, 3, (2, c, 7, 11), generator=g).float()  # many exact ties
    src[0, :, 0] = 0.0  # an all-silent frame: source 0 by argmax's first-index rule
    assert torch.equal(losses.ideal_assignment(src), src.argmax(dim=1))


# -- DC loss -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("silent", [False, True])
def test_fast_dc_value_and_gradient_match_naive_formula(weighted, silent):
    v, src = case()
    if silent:
        src[:, 1] = 0.0  # a source that owns no bin keeps its column of Y
    labels = losses.ideal_assignment(src)
    w = src.sum(1) if weighted else None
    v_fast = v.clone().requires_grad_()
    v_ref = v.double().requires_grad_()
    got = losses.deep_clustering_loss(v_fast, labels, 3, w)
    want = naive_dc(v_ref, labels, 3, w)
    got.backward()
    want.backward()
    assert got.dtype == torch.float32
    assert abs(got.item() - want.item()) <= 1e-5 * want.item()
    assert rel(v_fast.grad, v_ref.grad) < 1e-5


def test_fast_dc_matches_autograd_reference_across_chunks_and_threads(two_threads):
    """More bins than one CPU chunk (16384) so chunks and the thread split are exercised."""
    v, src = case(b=3, t=130, f=129, d=4, c=4, seed=1)
    labels, w = losses.ideal_assignment(src), src.sum(1)
    v1, v2 = v.clone().requires_grad_(), v.clone().requires_grad_()
    a = losses.deep_clustering_loss(v1, labels, 4, w)
    r = losses.deep_clustering_loss_reference(v2, labels, 4, w)
    a.backward()
    r.backward()
    assert abs(a.item() - r.item()) <= 1e-5 * r.item()
    assert rel(v1.grad, v2.grad) < 1e-5
    assert torch.get_num_threads() == 2  # the split restores the caller's thread count


def test_fast_dc_flat_layout_and_grad_scale():
    v, src = case()
    labels, w = losses.ideal_assignment(src), src.sum(1)
    flat = v.reshape(2, -1, 5).clone().requires_grad_()
    (3.0 * losses.deep_clustering_loss(flat, labels.reshape(2, -1), 3, w.reshape(2, -1))).backward()
    v_ref = v.double().requires_grad_()
    (3.0 * naive_dc(v_ref, labels, 3, w)).backward()
    assert rel(flat.grad, v_ref.grad.reshape(2, -1, 5)) < 1e-5


def test_fast_dc_rejects_labels_beyond_n_sources():
    v, src = case(c=3)
    with pytest.raises((ValueError, RuntimeError)):
        losses.deep_clustering_loss(v, losses.ideal_assignment(src), 2, None)


def test_bf16_embedding_dc_within_tolerance():
    v, src = case(b=2, t=40, f=33, d=8)
    labels, w = losses.ideal_assignment(src), src.sum(1)
    v16 = v.to(torch.bfloat16).requires_grad_()
    got = losses.deep_clustering_loss(v16, labels, 3, w)
    got.backward()
    v_ref = v.double().requires_grad_()
    want = naive_dc(v_ref, labels, 3, w)
    want.backward()
    assert got.dtype == torch.float32 and v16.grad.dtype == torch.bfloat16
    assert abs(got.item() - want.item()) <= 1e-3 * want.item()
    assert rel(v16.grad, v_ref.grad) < 2e-2


def test_weights_with_grad_fall_back_and_match_naive():
    v, src = case()
    labels = losses.ideal_assignment(src)
    w1 = src.sum(1).requires_grad_()
    w2 = src.sum(1).double().requires_grad_()
    losses.deep_clustering_loss(v, labels, 3, w1).backward()
    naive_dc(v.double(), labels, 3, w2).backward()
    assert rel(w1.grad, w2.grad) < 1e-5


# -- fused sigmoid + unit norm ----------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_sigmoid_unit_norm_matches_normalize_of_sigmoid(dtype, two_threads):
    g = torch.Generator().manual_seed(0)
    z = 6 * torch.randn(3, 7000, 6, generator=g, dtype=torch.float64)  # 21k rows: two chunks
    z[0, :5] = -60.0  # norm below F.normalize's eps: its clamp branch
    z_ref = z.clone().requires_grad_()
    z_fast = z.to(dtype).requires_grad_()
    want = nnf.normalize(torch.sigmoid(z_ref if dtype == torch.float32 else z_ref.to(dtype).double()), dim=-1)
    got = sigmoid_unit_norm(z_fast)
    gout = torch.randn(want.shape, generator=g, dtype=torch.float64)
    (want * gout).sum().backward()
    (got * gout.float()).sum().backward()
    assert got.dtype == torch.float32 and z_fast.grad.dtype == dtype
    assert rel(got, want) < 1e-6
    tol = 1e-5 if dtype == torch.float32 else 1e-2  # bf16: the gradient is rounded to bf16
    assert rel(z_fast.grad, z_ref.grad) < tol
    assert rel(z_fast.grad[0, :5], z_ref.grad[0, :5]) < tol


# -- direction-parallel BLSTM -----------------------------------------------------------------------
def test_blstm_parallel_equals_nn_lstm_forward_and_backward(two_threads):
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(13, 8, num_layers=3, batch_first=True, bidirectional=True)
    x = torch.randn(3, 17, 13, requires_grad=True)
    params = [x, *lstm.parameters()]
    want = lstm(x)[0]
    gout = torch.randn_like(want)
    want_grads = torch.autograd.grad(want, params, gout)
    got = blstm_parallel(lstm, x)
    got_grads = torch.autograd.grad(got, params, gout)
    assert rel(got, want) < 1e-5
    for a, b in zip(got_grads, want_grads):
        assert rel(a, b) < 1e-5
    with torch.no_grad():
        assert rel(blstm_parallel(lstm, x), want) < 1e-5
    with torch.inference_mode():
        assert rel(blstm_parallel(lstm, x), want.detach()) < 1e-5
    assert torch.get_num_threads() == 2


def test_chimera_cpu_autocast_runs_the_stack_in_fp32():
    """bf16 autocast on a CPU without oneDNN bf16 RNNs would fail to build the LSTM primitive."""
    torch.manual_seed(0)
    net = ChimeraNet(ChimeraConfig(hidden_size=8, num_layers=2, embedding_dim=4, n_sources=2))
    mag = torch.rand(2, 9, 257)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        feats = net.features(mag)
    assert feats.isfinite().all()
    if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        assert feats.dtype == torch.float32
        assert rel(feats, net.features(mag)) < 1e-6


# -- the whole step ---------------------------------------------------------------------------------
@pytest.mark.parametrize("phase", ["pretrain", "whole", "mask"])
def test_fast_step_equals_plain_step(phase, two_threads):
    """Losses and every trainable gradient of SeparationSystem's step equal the plain version's."""
    torch.manual_seed(0)
    model = {"hidden_size": 16, "num_layers": 2, "embedding_dim": 6}
    system = SeparationSystem(model=model, phase=phase, source_names=["a", "b", "c"])
    g = torch.Generator().manual_seed(1)
    src = 0.1 * torch.randn(2, 3, 4000, generator=g)
    src[1, 2] = 0.0  # a silent source
    batch = {"mix": src.sum(1), "sources": src}
    params = system.trainable_parameters()

    fast = system.compute_losses(batch)
    fast_grads = torch.autograd.grad(fast["loss"], params)
    plain = plain_compute_losses(system, batch)
    plain_grads = torch.autograd.grad(plain["loss"], params)
    assert fast.keys() == plain.keys()
    for k in fast:
        assert abs(fast[k].item() - plain[k].item()) <= 1e-5 * abs(plain[k].item())
    for a, b in zip(fast_grads, plain_grads):
        assert rel(a, b) < 1e-4


# -- the benchmark's memory probe ---------------------------------------------------------------------
@pytest.mark.slow  # depends on the kernel exposing VmHWM resets (clear_refs); not on every machine
def test_peak_memory_probe_sees_a_known_allocation():
    from transfersep.bench.measure import PeakMemory

    with PeakMemory(torch.device("cpu")) as mem:
        x = torch.ones(64 << 18)  # 64 MiB of float32, every page touched
        del x
    assert 60 <= mem.extra_mib < 200, (mem.method, mem.extra_mib)
