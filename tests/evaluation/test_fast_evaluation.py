"""The evaluation computes only what it scores and batches its excerpts; its scores are those of the
plain path (one excerpt at a time, the whole ChimeraNet forward, then masks), written out here with
torch's STFT and the naive SI-SDR formula."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from oracles import naive_sisdr
from transfersep.data.generated import GeneratedExcerpts
from transfersep.evaluation.batches import heads_autocast, inference_batch
from transfersep.evaluation.evaluate import evaluate, score_excerpts
from transfersep.model.clusters import ClusterSeparator
from transfersep.model.system import SeparationSystem

TINY = {"hidden_size": 32, "num_layers": 2, "embedding_dim": 10}  # conf/model/tiny.yaml
NAMES = ["a", "b", "c"]


def _system(seed: int = 0) -> SeparationSystem:
    torch.manual_seed(seed)
    return SeparationSystem(dict(TINY), "whole", NAMES).eval()


def _plain_scores(net: torch.nn.Module, dataset) -> np.ndarray:
    """Per excerpt: sqrt-Hann STFT (512, hop 128), ``net(mag)`` with both heads, masks on the mixture
    spectrogram, iSTFT, then SI-SDR (naive formula) of every non-silent source (RMS >= -60 dBFS)."""
    window = torch.hann_window(512).sqrt()
    out = np.full((len(dataset), len(NAMES)), np.nan)
    for i in range(len(dataset)):
        item = dataset[i]
        mix, refs = item["mix"], item["sources"]
        spec = torch.stft(mix[None], 512, 128, window=window, center=True, return_complex=True).transpose(1, 2)
        with torch.no_grad():
            _, masks = net(spec.abs())  # [1, C, T, F]
        masked = (masks[0] * spec).transpose(1, 2)  # [C, F, T]
        est = torch.istft(masked, 512, 128, window=window, center=True, length=len(mix))
        for c in range(len(NAMES)):
            ref = refs[c].double().numpy()
            if np.sqrt(np.mean((ref - ref.mean()) ** 2)) >= 1e-3:
                out[i, c] = naive_sisdr(est[c].double().numpy(), ref)
    return out


def test_batched_mask_only_scores_equal_the_plain_path(tmp_path):
    system = _system()
    data = GeneratedExcerpts(len(NAMES), 2.0, seed=3, split="test", length=10)
    expected = _plain_scores(system.model, data)
    assert np.isnan(expected).any() and np.isfinite(expected).sum() > 20  # silent references are left out
    scores, silent, _ = score_excerpts(system.separate, data, len(NAMES))  # one batch of all ten
    np.testing.assert_array_equal(silent, np.isnan(expected))
    np.testing.assert_allclose(scores[~silent], expected[~silent], atol=0.01, rtol=0)
    # small batches, and the written result, say the same
    result = evaluate(system.separate, data, NAMES, tmp_path, {"stage": "finetune"}, batch_size=3)
    assert result["overall"]["mean"] == pytest.approx(np.nanmean(np.nanmean(expected, axis=1)), abs=0.01)


class _Calls:
    def __init__(self, module: torch.nn.Module):
        self.n = 0
        module.register_forward_hook(self.hook)

    def hook(self, *_):
        self.n += 1


def test_scoring_masks_skips_the_embedding_head_and_probing_skips_the_mask_head():
    system = _system()
    emb, mask = _Calls(system.model.embedding_head), _Calls(system.model.mask_head)
    data = GeneratedExcerpts(len(NAMES), 1.0, seed=0, split="test", length=4)
    score_excerpts(system.separate, data, len(NAMES))
    assert (emb.n, mask.n) == (0, 1)
    score_excerpts(ClusterSeparator(system.model, system.stft, k=3), data, len(NAMES))
    assert (emb.n, mask.n) == (1, 1)


def test_inference_batch_holds_about_48_ten_second_excerpts_on_cpu():
    assert inference_batch(160_000, "cpu") == 48  # 1251 frames each
    assert inference_batch(16_000, "cpu") == 48 * 1251 // 126
    assert inference_batch(10**9, "cpu") == 1


def test_bf16_heads_give_fp32_waveforms_near_the_fp32_ones():
    """The GPU's bf16 path, run on the CPU: masks in bf16 on an fp32 spectrogram, fp32 waveforms."""
    system = _system(1)
    mix = GeneratedExcerpts(len(NAMES), 1.0, seed=0, split="test", length=2)[0]["mix"][None]
    ref = system.separate(mix)
    with torch.inference_mode(), heads_autocast("cpu", True):
        est = system.separate(mix)
    assert est.dtype == torch.float32
    err = (est - ref).square().sum() / ref.square().sum()
    assert 0 < err.item() < 1e-3  # bf16 rounding (8 bits) of the masks and heads, nothing worse
    with heads_autocast("cpu"):
        assert not torch.is_autocast_enabled("cpu")  # off on the CPU unless asked for
