"""Fast paths of ChimeraNet's training step; each computes exactly what the plain layers compute.

* ``sigmoid_unit_norm``: sigmoid then L2 normalisation of the last dim (= ``F.normalize(sigmoid(z))``)
  as one autograd Function that streams over cache-sized chunks and saves only its output and the
  norms, where autograd would keep the sigmoid output as well (one more [B, T, F, D] tensor) and
  make four more passes over it.
* ``blstm_parallel``: a bidirectional ``nn.LSTM`` run with its two directions on two threads, each
  with half the intra-op threads, forward and backward (without gradients it is ``nn.LSTM`` itself).
  On a small CPU the per-time-step GEMMs of one direction (batch x 4H) are too small to split across
  cores well (and a shared, loaded core
  stalls every step's OpenMP barrier); two independent directions split perfectly. Same weights,
  same math (oneDNN per direction), so the result equals ``nn.LSTM``'s up to GEMM rounding.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import torch
from torch import _VF, nn

_EPS = 1e-12  # F.normalize's default eps
T = TypeVar("T")


def _rows_per_chunk(x: torch.Tensor) -> int:
    return 16384 if x.device.type == "cpu" else max(1, x.shape[0])


def _chunks(rows: int, k: int, parts: int, step: int) -> list[slice]:
    """The chunks of part k of ``parts`` contiguous shares of ``rows`` rows."""
    lo, hi = rows * k // parts, rows * (k + 1) // parts
    return [slice(s, min(s + step, hi)) for s in range(lo, hi, step)]


class _SigmoidUnitNorm(torch.autograd.Function):
    """v = s / max(||s||, eps), s = sigmoid(z), over the last dim. z [R, D] -> v [R, D] fp32.

    Backward from v and n = ||s|| alone. With n' = max(n, eps): if n > eps, dL/ds = (g - v <v, g>) / n
    and ds/dz = s (1 - s) = n v (1 - n v); if n <= eps (clamped), dL/ds = g / eps and s = eps v. Both:
        dz = v (1 - n' v) (g - v <v, g> [n > eps]).
    """

    @staticmethod
    def forward(ctx, z):
        v = torch.empty(z.shape, dtype=torch.float32, device=z.device)
        norm = torch.empty(z.shape[0], 1, dtype=torch.float32, device=z.device)

        def part(k: int, n: int) -> None:
            for s in _chunks(z.shape[0], k, n, _rows_per_chunk(z)):
                vc, nc = v[s], norm[s]
                torch.sigmoid(z[s].float(), out=vc)
                torch.linalg.vector_norm(vc, dim=1, keepdim=True, out=nc)
                vc.div_(nc.clamp_min(_EPS))

        run_split(part, cpu_parts(z))
        ctx.save_for_backward(v, norm)
        ctx.in_dtype = z.dtype
        return v

    @staticmethod
    def backward(ctx, g):
        v, norm = ctx.saved_tensors
        dz = torch.empty(v.shape, dtype=ctx.in_dtype, device=v.device)

        def part(k: int, n: int) -> None:
            for s in _chunks(v.shape[0], k, n, _rows_per_chunk(v)):
                vc, nc, gc = v[s], norm[s], g[s].float()
                dot = torch.linalg.vecdot(vc, gc, dim=1).unsqueeze(1).masked_fill_(nc <= _EPS, 0.0)
                t = torch.addcmul(gc, vc, dot, value=-1.0)  # g - v <v, g>
                t.mul_(vc).mul_(torch.addcmul(torch.ones_like(vc[:1]), vc, nc.clamp_min(_EPS), value=-1.0))
                dz[s] = t

        run_split(part, cpu_parts(v))
        return dz


def sigmoid_unit_norm(z: torch.Tensor) -> torch.Tensor:
    """``F.normalize(torch.sigmoid(z), dim=-1)`` in fp32 whatever z's dtype: [..., D] -> [..., D]."""
    with torch.autocast(z.device.type, enabled=False):
        return _SigmoidUnitNorm.apply(z.reshape(-1, z.shape[-1]).contiguous()).view(z.shape)


# -- work split across threads ----------------------------------------------------------------------
_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _pool(workers: int) -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL._max_workers < workers:
            _POOL = ThreadPoolExecutor(max_workers=max(2, workers), thread_name_prefix="transfersep-split")
        return _POOL


def cpu_parts(x: torch.Tensor, limit: int | None = None) -> int:
    """How many independent parts to cut CPU work on ``x`` into: one per intra-op thread (1 on GPU)."""
    if x.device.type != "cpu":
        return 1
    n = torch.get_num_threads()
    return max(1, min(n, limit) if limit else n)


def run_split(fn: Callable[[int, int], T], parts: int) -> list[T]:
    """``[fn(k, parts) for k in range(parts)]``, the parts on their own threads.

    Each part gets ``threads // parts`` intra-op threads (at least one): many small ops then run
    without an OpenMP barrier each (on a shared, loaded core a barrier waits for the slowest
    thread, which made a chunked loop 3x slower on 2 threads than on 1). The caller's grad and
    inference modes carry over (they are thread-local); its thread count is restored after.
    """
    if parts <= 1:
        return [fn(0, 1)]
    n_threads = torch.get_num_threads()
    per_part = max(1, n_threads // parts)
    grad, inference = torch.is_grad_enabled(), torch.is_inference_mode_enabled()

    def run(k: int):
        torch.set_num_threads(per_part)
        with torch.inference_mode(inference), torch.set_grad_enabled(grad):
            return fn(k, parts)

    try:
        futures = [_pool(parts).submit(run, k) for k in range(parts)]
        return [f.result() for f in futures]
    finally:
        torch.set_num_threads(n_threads)  # at::set_num_threads also sets the process-wide MKL count


# -- direction-parallel BLSTM ------------------------------------------------------------------------
def _on_two_threads(fn: Callable[[int], T]) -> list[T]:
    return run_split(lambda k, _n: fn(k), 2)


def _layer_params(lstm: nn.LSTM, layer: int, direction: int) -> list[torch.Tensor]:
    sfx = f"_l{layer}" + ("_reverse" if direction else "")
    return [getattr(lstm, n + sfx) for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]


def _one_direction(x: torch.Tensor, params: list[torch.Tensor], reverse: bool) -> torch.Tensor:
    """One unidirectional LSTM layer over time-major x [T, B, I] -> [T, B, H]."""
    h0 = x.new_zeros(1, x.shape[1], params[1].shape[1])
    xin = x.flip(0) if reverse else x
    # train=True makes oneDNN keep the workspace its backward needs (dropout is 0 here either way)
    out = _VF.lstm(xin, (h0, h0), params, True, 1, 0.0, torch.is_grad_enabled(), False, False)[0]
    return out.flip(0) if reverse else out


class _BiLayer(torch.autograd.Function):
    """One bidirectional layer, [T, B, I] -> [T, B, 2H]; forward and backward on two threads.

    Each direction keeps its own small autograd graph (built on its thread); backward runs the two
    graphs concurrently with ``torch.autograd.grad`` and adds the two input gradients.
    """

    @staticmethod
    def forward(ctx, x, *params):
        def fwd(d: int):
            with torch.enable_grad():
                xi = x.detach().requires_grad_(x.requires_grad)
                ps = [p.detach().requires_grad_(p.requires_grad) for p in params[4 * d : 4 * d + 4]]
                return xi, ps, _one_direction(xi, ps, bool(d))

        ctx.graphs = _on_two_threads(fwd)
        return torch.cat([g[2].detach() for g in ctx.graphs], dim=-1)

    @staticmethod
    def backward(ctx, grad):
        graphs, ctx.graphs = ctx.graphs, None  # free the inner graphs with this call
        hidden = grad.shape[-1] // 2

        def bwd(d: int):
            xi, ps, out = graphs[d]
            wrt = [t for t in (xi, *ps) if t.requires_grad]
            got = iter(torch.autograd.grad(out, wrt, grad[..., d * hidden : (d + 1) * hidden]))
            return [next(got) if t.requires_grad else None for t in (xi, *ps)]

        g0, g1 = _on_two_threads(bwd)
        gx = g0[0] + g1[0] if g0[0] is not None else None
        return (gx, *g0[1:], *g1[1:])


def blstm_parallel(lstm: nn.LSTM, x: torch.Tensor) -> torch.Tensor:
    """``lstm(x)[0]`` for a batch-first bidirectional ``nn.LSTM`` with biases: [B, T, I] -> [B, T, 2H]."""
    if not (lstm.bidirectional and lstm.batch_first and lstm.bias and lstm.proj_size == 0):
        raise ValueError("blstm_parallel needs a batch-first bidirectional nn.LSTM with biases")
    if not (torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in lstm.parameters()))):
        # no backward to split (mask phase, validation, evaluation): oneDNN's bidirectional inference
        # kernel beats two threads with flipped copies (the mask-phase step took 2.1x as long split)
        return lstm(x)[0]
    h = x.transpose(0, 1).contiguous()  # time-major once for the whole stack (oneDNN's own layout)
    for layer in range(lstm.num_layers):
        h = _BiLayer.apply(h, *_layer_params(lstm, layer, 0), *_layer_params(lstm, layer, 1))
        if lstm.dropout and lstm.training and layer < lstm.num_layers - 1:
            h = nn.functional.dropout(h, lstm.dropout, training=True)
    return h.transpose(0, 1).contiguous()
