"""Bootstrapped DC labels: a tone and clicks land in different groups; each primitive's decision is
librosa's own; the batch contract (shapes, dtypes, ranges) holds; the labels are deterministic."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import scipy.ndimage
import torch

from transfersep.audio import STFT
from transfersep.data import bootstrap, build_datamodule, generated
from transfersep.data.index import DatasetError

SR = 16_000


def tone_and_clicks(seconds: float, period: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """A sustained 220 Hz harmonic tone (7 partials) and a unit click every ``period`` seconds."""
    t = np.arange(int(seconds * SR)) / SR
    tone = 0.1 * sum(np.sin(2 * np.pi * 220 * h * t + h) / h for h in range(1, 8))
    clicks = np.zeros_like(t)
    clicks[int(0.05 * SR) :: int(period * SR)] = 1.0
    return tone.astype(np.float32), clicks.astype(np.float32)


def librosa_mag(x: np.ndarray) -> np.ndarray:
    """|STFT| [T, F] by librosa with the tool's parameters (sqrt of scipy's periodic Hann)."""
    window = np.sqrt(scipy.signal.get_window("hann", 512))
    return np.abs(librosa.stft(x, n_fft=512, hop_length=128, window=window, center=True, pad_mode="reflect")).T


def music_like(seconds: float, seed: int) -> np.ndarray:
    """Generated stems summed (tones and noise bursts) plus a little noise, so no two bins tie."""
    rng = np.random.default_rng(seed)
    mix = generated.make_sources(rng, 3, int(seconds * SR)).sum(0)
    return (mix + 1e-3 * rng.standard_normal(mix.shape)).astype(np.float32)


@pytest.mark.parametrize("seconds", [10.0, 1.0])
def test_tone_and_clicks_land_in_different_groups_with_high_weight(seconds):
    tone, clicks = tone_and_clicks(seconds)
    labels, weights = bootstrap.label_mixture(tone + clicks)
    mt, mc = librosa_mag(tone), librosa_mag(clicks)
    # each component's dominant loud bins: within 20 dB of its own peak and twice the other's magnitude
    tone_bins = (mt > 0.1 * mt.max()) & (mt > 2 * mc)
    click_bins = (mc > 0.1 * mc.max()) & (mc > 2 * mt)
    assert tone_bins.sum() > 100 and click_bins.sum() > 100
    group_tone = np.bincount(labels[tone_bins], minlength=2).argmax()
    assert (labels[tone_bins] == group_tone).mean() >= 0.9
    assert (labels[click_bins] == 1 - group_tone).mean() >= 0.9
    assert weights[tone_bins].mean() >= 0.6 and weights[click_bins].mean() >= 0.6
    assert group_tone == 0  # the documented side: group 0 is the sustained bed


def test_magnitude_is_the_models_stft():
    x = music_like(1.3, 0)
    ref = STFT()(torch.from_numpy(x)[None]).abs()[0].numpy()  # [T, F]
    got = bootstrap.magnitude(x).T
    assert got.shape == ref.shape == (len(x) // 128 + 1, 257)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * ref.max())


@pytest.mark.parametrize("size,axis", [(17, 1), (17, 0), (31, 0), (5, 1), (301, 0)])
def test_median_filter_equals_scipy(size, axis):
    x = np.random.default_rng(size).random((257, 120)).astype(np.float32)
    shape = (1, size) if axis == 1 else (size, 1)
    ref = scipy.ndimage.median_filter(x, size=shape, mode="reflect")
    np.testing.assert_array_equal(bootstrap.median_filter_1d(x, size, axis), ref)


@pytest.mark.parametrize("kernel,margin", [((17, 17), 1.0), ((31, 9), 2.0)])
def test_hpss_decision_is_librosas_hard_harmonic_mask(kernel, margin):
    mag = bootstrap.magnitude(music_like(2.0, 1))
    spec = bootstrap.BootstrapSpec(hpss_kernel=kernel, hpss_margin=margin)
    harmonic, _ = librosa.decompose.hpss(mag, kernel_size=kernel, margin=margin, power=np.inf, mask=True)
    np.testing.assert_array_equal(bootstrap.hpss_votes(mag, spec) == 0, harmonic)


def reference_repeating(mag: np.ndarray, pool: int, depth: float, m: int, width: int) -> np.ndarray:
    """REPET-SIM by librosa: recurrence_matrix (cosine distances) picks each block's similar blocks,
    nn_filter takes the median over the chosen ranks; blocks by a plain loop."""
    t = mag.shape[1]
    blocks = np.stack([mag[:, s : s + pool].mean(axis=1) for s in range(0, t, pool)], axis=1)
    tb = blocks.shape[1]
    k = int(round(depth * (tb - (2 * width - 1))))
    dist = librosa.segment.recurrence_matrix(
        blocks, k=k, width=width, metric="cosine", mode="distance", sparse=False
    )  # dist[j, i]: j is one of i's k nearest
    chosen = np.zeros((tb, tb), dtype=bool)
    ranks = ((np.arange(m) + 0.5) * k / m).astype(int)
    for i in range(tb):
        nbrs = np.flatnonzero(dist[:, i])
        assert len(nbrs) == k
        chosen[nbrs[np.argsort(dist[nbrs, i])][ranks], i] = True
    rep = librosa.decompose.nn_filter(blocks, rec=chosen.astype(float), aggregate=np.median)
    return np.repeat(rep, pool, axis=1)[:, :t]


@pytest.mark.parametrize("pool,depth,m,width,margin", [(4, 0.5, 15, 1, 1.0), (2, 0.3, 9, 3, 2.0)])
def test_repet_decision_is_librosas_hard_background_mask(pool, depth, m, width, margin):
    mag = bootstrap.magnitude(music_like(3.0, 2))
    spec = bootstrap.BootstrapSpec(
        repet_pool=pool, repet_depth=depth, repet_neighbours=m, repet_width=width, repet_margin=margin
    )
    rep = reference_repeating(mag, pool, depth, m, width)
    np.testing.assert_allclose(bootstrap.repeating_estimate(mag, spec), rep, rtol=1e-6)
    bg = np.minimum(mag, rep)
    background = librosa.util.softmask(bg, margin * (mag - bg), power=np.inf)
    agree = (bootstrap.repet_votes(mag, spec) == 0) == background
    assert agree.mean() > 0.999  # exact up to float rounding at the mask's boundary


def test_votes_combine_by_majority_and_agreement():
    ones, zeros = np.ones((2, 3), np.uint8), np.zeros((2, 3), np.uint8)
    labels, weights = bootstrap.combine([ones, ones, zeros])
    assert (labels == 1).all() and np.allclose(weights, 1 / 3)
    labels, weights = bootstrap.combine([ones, zeros])
    assert (weights == 0).all()
    labels, weights = bootstrap.combine([zeros, zeros])
    assert (labels == 0).all() and (weights == 1).all()


def test_wrapper_serves_the_batch_contract_deterministically():
    base = generated.GeneratedExcerpts(2, 1.0, seed=3, split="train", length=4)
    a, b = bootstrap.BootstrapLabels(base), bootstrap.BootstrapLabels(base)
    item = a[2]
    n = item["mix"].shape[-1]
    t, f = STFT()(item["mix"][None]).shape[1:]
    assert item["dc_labels"].shape == item["dc_weights"].shape == (t, f) == (n // 128 + 1, 257)
    assert item["dc_labels"].dtype == torch.int64 and item["dc_weights"].dtype == torch.float32
    assert set(item["dc_labels"].unique().tolist()) <= {0, 1}
    assert item["dc_weights"].min() >= 0 and item["dc_weights"].max() <= 1
    assert torch.equal(item["mix"], base[2]["mix"]) and torch.equal(item["sources"], base[2]["sources"])
    again = b[2]
    assert torch.equal(item["dc_labels"], again["dc_labels"]) and torch.equal(item["dc_weights"], again["dc_weights"])
    batch = torch.utils.data.default_collate([a[0], a[1]])
    assert batch["dc_labels"].shape == (2, t, f)


@pytest.mark.parametrize(
    "node,key",
    [
        ({"hpss_kernal": [17, 17]}, "pretrain.bootstrap.hpss_kernal"),
        ({"hpss_kernel": [16, 17]}, "pretrain.bootstrap.hpss_kernel"),
        ({"primitives": ["hpss", "nmf"]}, "pretrain.bootstrap.primitives"),
        ({"repet_depth": 1.5}, "pretrain.bootstrap.repet_depth"),
        ({"hpss_margin": 0.5}, "pretrain.bootstrap.hpss_margin"),
    ],
)
def test_bad_settings_name_the_key(node, key):
    with pytest.raises(DatasetError) as e:
        bootstrap.BootstrapSpec.from_cfg(node)
    assert str(e.value).startswith(key) and "\n" not in str(e.value)


def test_pretraining_sets_of_a_bootstrap_run_carry_labels():
    from project import compose
    from transfersep.model import objectives

    cfg = compose(["experiment=tiny", "data.generated=true", "objective=bootstrap", "data.excerpt_seconds=0.5"])
    dm = build_datamodule(cfg, "pretrain", 2, objectives.get("bootstrap"))
    for ds in (dm.train_set, dm.val_set):
        item = ds[0]
        assert item["dc_labels"].shape == (len(item["mix"]) // 128 + 1, 257)
    plain_cfg = compose(["experiment=tiny", "data.generated=true", "pretrain=slakh"])
    plain = build_datamodule(plain_cfg, "pretrain", 2, objectives.get("dc"))
    assert "dc_labels" not in plain.train_set[0]
