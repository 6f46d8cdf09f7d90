"""Mixture invariant training (MixIT; Wisdom et al., "Unsupervised sound separation using mixture
invariant training", NeurIPS 2020): the loss of self-supervised pretraining on mixtures alone.

The model hears a mixture of two reference mixtures and separates it into M outputs; each output
is assigned to one of the two references, each reference is scored against the sum of its
outputs, and the loss is that of the best of the 2^M assignments. It is computed exactly and
without a loop over assignments: every quantity the loss needs is a quadratic form in the
assignment, so the outputs' Gram matrix and their inner products with the references (one pass
over the waveforms) give the loss of all 2^M assignments at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

MIXIT_DEFAULTS: dict[str, Any] = {"outputs": 4, "snr_max_db": 30.0}
MAX_OUTPUTS = 12  # 2^12 assignments per example; the MixIT paper uses at most 8 outputs
# added to both energies of the thresholded SNR (squared-amplitude units, so far below any audible
# reference: a 1-s excerpt at -60 dBFS holds 0.016): a silent reference with silent outputs scores
# 0 dB instead of 0/0, one whose outputs carry energy scores below 0 dB (the loss pushes them to
# silence), and every gradient stays finite
EPS = 1e-8


def output_names(outputs: int) -> list[str]:
    """The source names of a MixIT model's M outputs: ``output1 .. outputM``."""
    return [f"output{i + 1}" for i in range(outputs)]


def mixit_settings(mixit: Mapping[str, Any] | None) -> dict[str, Any]:
    """``pretrain.mixit`` merged over ``MIXIT_DEFAULTS`` and checked (``ValueError`` naming the key).
    Keys the model does not use (``gain_db``, read by the data side) are kept as they are."""
    out = {**MIXIT_DEFAULTS, **dict(mixit or {})}
    m = out["outputs"]
    if isinstance(m, bool) or not isinstance(m, int) or not 2 <= m <= MAX_OUTPUTS:
        raise ValueError(
            f"pretrain.mixit.outputs={m!r}: MixIT needs an integer number of mask outputs from 2 to "
            f"{MAX_OUTPUTS} (the loss scores 2^outputs assignments); set e.g. pretrain.mixit.outputs=4"
        )
    snr = out["snr_max_db"]
    if isinstance(snr, bool) or not isinstance(snr, (int, float)) or not snr > 0:
        raise ValueError(f"pretrain.mixit.snr_max_db={snr!r}: the SNR ceiling is a positive number of dB, e.g. 30")
    out["snr_max_db"] = float(snr)
    return out


def assignment_matrix(outputs: int, groups: int, dtype: torch.dtype = torch.float32, device=None) -> Tensor:
    """Every way to put each of ``outputs`` signals into exactly one of ``groups``: a one-hot
    ``[groups**outputs, groups, outputs]`` tensor, ``A[k, g, m] = 1`` when assignment ``k`` puts
    output ``m`` into group ``g``. Output ``m`` is digit ``m`` (least significant first) of ``k``
    written in base ``groups``."""
    k = torch.arange(groups**outputs, device=device)
    digits = (k[:, None] // groups ** torch.arange(outputs, device=device)) % groups  # [K, M]
    return torch.nn.functional.one_hot(digits, groups).to(dtype).transpose(1, 2).contiguous()


def mixit_loss(est: Tensor, refs: Tensor, snr_max_db: float = 30.0) -> tuple[Tensor, Tensor]:
    """MixIT loss: negative thresholded SNR of each reference mixture against the sum of the
    outputs assigned to it, minimised over all assignments of outputs to references.

    For assignment ``A`` (each output to exactly one reference) and reference ``j``::

        yhat_j = sum_m A[j, m] est_m
        L_j    = -10 log10( ||y_j||^2 / (||y_j - yhat_j||^2 + tau ||y_j||^2) ),  tau = 10^(-snr_max_db / 10)

    and the loss of an example is ``min_A sum_j L_j`` over all ``2^M`` assignments (Wisdom et al.,
    2020, eq. 1 and 2; the soft threshold ``tau`` caps each reference's SNR at ``snr_max_db``, so a
    perfect separation scores ``-2 * snr_max_db``). ``EPS`` is added to both energies (a silent
    reference gives no NaN, see ``EPS``).

    The minimum is exact and vectorised: ``||y_j - yhat_j||^2 = ||y_j||^2 - 2 A_j.c_j + A_j^T G A_j``
    with ``G`` the outputs' Gram matrix ``[B, M, M]`` and ``c_j`` the references' inner products with
    the outputs ``[B, 2, M]``, evaluated for the whole assignment tensor ``[2^M, 2, M]`` by einsum.
    The energies are computed in float64 (float32 on MPS, which has no float64), which keeps the
    difference of large terms exact to far beyond the SNR ceiling.

    Args:
        est: ``[B, M, N]`` the model's M output waveforms.
        refs: ``[B, 2, N]`` the two reference mixtures (their sum is the model's input).
        snr_max_db: the SNR ceiling in dB (``tau = 10^(-snr_max_db / 10)``).

    Returns:
        ``(loss, assignment)``: the scalar mean over the batch of each example's best loss (in
        ``est``'s float dtype, at least float32), and long ``[B, M]``, the reference (0 or 1) each
        output is assigned to in that best assignment.
    """
    if est.ndim != 3 or refs.ndim != 3 or refs.shape[1] != 2 or est.shape[::2] != refs.shape[::2]:
        raise ValueError(
            f"MixIT needs outputs [B, M, N] and two reference mixtures [B, 2, N], got {tuple(est.shape)} "
            f"and {tuple(refs.shape)}"
        )
    work = torch.float32 if est.device.type == "mps" else torch.float64
    out_dtype = torch.promote_types(est.dtype, torch.float32)
    with torch.autocast(est.device.type, enabled=False):  # bf16-mixed training: the energies stay exact
        return _mixit_loss(est.to(work), refs.to(work), float(snr_max_db), out_dtype)


def _mixit_loss(e: Tensor, y: Tensor, snr_max_db: float, out_dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    a = assignment_matrix(e.shape[1], 2, e.dtype, e.device)  # [K, 2, M]
    gram = torch.einsum("bmn,bpn->bmp", e, e)  # [B, M, M]
    cross = torch.einsum("bjn,bmn->bjm", y, e)  # [B, 2, M]
    ref_pow = y.pow(2).sum(-1)[:, None, :]  # [B, 1, 2]
    est_pow = torch.einsum("kjm,bmp,kjp->bkj", a, gram, a)  # ||yhat_j||^2 [B, K, 2]
    inner = torch.einsum("kjm,bjm->bkj", a, cross)  # <y_j, yhat_j> [B, K, 2]
    err = (ref_pow - 2 * inner + est_pow).clamp_min(0.0)  # rounding may leave a perfect fit at -0
    tau = 10.0 ** (-snr_max_db / 10.0)
    snr = 10.0 * torch.log10((ref_pow + EPS) / (err + tau * ref_pow + EPS))
    best, k = (-snr.sum(-1)).min(-1)  # [B]
    assignment = a[k].argmax(1)  # [B, 2, M] -> the reference of each output [B, M]
    return best.mean().to(out_dtype), assignment
