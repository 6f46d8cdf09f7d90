"""On a CUDA device: bf16 training and the zero-shot probe run there and agree with the CPU.

Marked ``gpu`` (``make test`` leaves them out; ``make test-all`` and ``scripts/gpu_check.sh`` run
them); each skips with its reason where torch sees no CUDA device.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from transfersep.audio import STFT
from transfersep.bench.probe import SIZES, synthetic_batch
from transfersep.data.generated import GeneratedExcerpts
from transfersep.evaluation.evaluate import score_excerpts
from transfersep.evaluation.matching import match_to_references
from transfersep.model.clusters import ClusterSeparator, batch_kmeans_labels
from transfersep.model.system import SeparationSystem

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device; torch sees none here"),
]
TINY = {"hidden_size": 32, "num_layers": 2, "embedding_dim": 10}
NAMES = ["a", "b", "c"]


def _pair(phase: str) -> tuple[SeparationSystem, SeparationSystem]:
    torch.manual_seed(0)
    cpu = SeparationSystem(dict(TINY), phase, NAMES)
    gpu = SeparationSystem(dict(TINY), phase, NAMES)
    gpu.load_state_dict(cpu.state_dict())
    return cpu, gpu.cuda()


def _batch(n: int = 4) -> dict[str, torch.Tensor]:
    data = GeneratedExcerpts(len(NAMES), 2.0, seed=0, split="train", length=n)
    src = torch.stack([data[i]["sources"] for i in range(n)])
    return {"mix": src.sum(1), "sources": src}


@pytest.mark.parametrize("phase", ["pretrain", "whole"])
def test_a_bf16_training_step_runs_on_the_gpu_and_matches_the_cpu(phase):
    cpu, gpu = _pair(phase)
    batch = _batch()
    loss_cpu = cpu.compute_losses(batch)["loss"]
    loss_cpu.backward()
    with torch.autocast("cuda", dtype=torch.bfloat16):  # as trainer=gpu (precision=bf16-mixed)
        out = gpu.compute_losses({k: v.cuda() for k, v in batch.items()})
    out["loss"].backward()
    assert out["loss"].device.type == "cuda" and out["loss"].dtype == torch.float32
    assert out["loss"].item() == pytest.approx(loss_cpu.item(), rel=2e-2)
    for (name, p_cpu), p_gpu in zip(cpu.model.named_parameters(), gpu.model.parameters()):
        if p_cpu.grad is None:
            assert p_gpu.grad is None, name
            continue
        assert p_gpu.grad.device.type == "cuda"
        cos = torch.nn.functional.cosine_similarity(p_cpu.grad.flatten(), p_gpu.grad.float().cpu().flatten(), dim=0)
        assert cos.item() > 0.95, name  # bf16 heads, fp32 (TF32) BLSTM: the same direction


def test_kmeans_on_the_gpu_gives_the_cpu_clusters():
    s = SIZES["paper"]
    stft = STFT()
    b = synthetic_batch(GeneratedExcerpts(3, s["seconds"], 0, "test", 4), 0, 4, s["dim"], stft)
    mag = b["spec"].abs()
    seeds = [(0, 0, i) for i in range(4)]
    on_cpu = batch_kmeans_labels(b["emb"], mag, 3, seeds)
    on_gpu = batch_kmeans_labels(b["emb"].cuda(), mag.cuda(), 3, seeds)
    assert on_gpu.device.type == "cuda"
    # the same draws on both devices: the same clusters except where rounding moves a boundary bin
    assert (on_gpu.cpu() == on_cpu).float().mean().item() > 0.99


@pytest.fixture
def no_tf32():
    """cuDNN's fp32 RNN without TF32: the embeddings then equal the CPU's to float rounding, so
    k-means draws the same bins on both devices."""
    before = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32 = before


def test_the_probe_runs_on_the_gpu_and_scores_as_on_the_cpu(no_tf32):
    cpu, gpu = _pair("mask")
    data = GeneratedExcerpts(len(NAMES), 2.0, seed=0, split="test", length=6)
    scores = {}
    for name, system in (("cpu", cpu), ("cuda", gpu)):
        sep = ClusterSeparator(system.model, system.stft, k=3, seed=0)
        device = next(system.parameters()).device
        scores[name] = score_excerpts(sep, data, 3, device=device, align=match_to_references, bf16=False)[0]
    assert np.isfinite(scores["cuda"]).sum() == np.isfinite(scores["cpu"]).sum() > 0
    # fp32 on both: a boundary bin may switch cluster, the scores barely move
    assert abs(np.nanmean(scores["cuda"]) - np.nanmean(scores["cpu"])) < 0.1


def test_the_evaluation_in_bf16_on_the_gpu_scores_as_fp32_on_the_cpu():
    cpu, gpu = _pair("whole")
    data = GeneratedExcerpts(len(NAMES), 2.0, seed=0, split="test", length=6)
    ref = score_excerpts(cpu.separate, data, 3)[0]
    got = score_excerpts(gpu.separate, data, 3, device="cuda")[0]  # bf16 heads by default on a GPU
    np.testing.assert_allclose(got, ref, atol=0.1)
