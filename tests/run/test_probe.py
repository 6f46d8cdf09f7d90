"""The zero-shot probe, checked on constructed cases with independently computed answers.

References: the ideal binary mask (IBM) computed here from the sources' own spectrograms, SI-SDR
from torchmetrics called directly, and a permutation written by hand.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torchmetrics.functional.audio import scale_invariant_signal_distortion_ratio as si_sdr

from transfersep.audio import STFT, STFTConfig
from transfersep.evaluation.evaluate import evaluate, score_excerpts
from transfersep.evaluation.matching import match_to_references
from transfersep.model.clusters import CentroidSeparator, ClusterSeparator, kmeans_labels

SR, N = 16000, 8000


def _sources(seed: int) -> torch.Tensor:
    """[2, N]: a low harmonic tone and a high one, with some noise each, so the IBM is imperfect."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(N) / SR
    low = sum(torch.sin(2 * math.pi * 220 * h * t) / h for h in (1, 2, 3))
    high = 0.7 * sum(torch.sin(2 * math.pi * 1500 * h * t + 0.3) / h for h in (1, 2))
    noise = 0.05 * torch.randn(2, N, generator=g)
    return torch.stack([low, high]) + noise


class FakeNet(nn.Module):
    """Stands in for ChimeraNet where the probe uses it: ``features`` passes the magnitude on,
    ``embed`` is the subclass's construction."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))  # the probe finds the device through a parameter

    def features(self, mag: torch.Tensor) -> torch.Tensor:
        return mag


class OracleNet(FakeNet):
    """Its embedding of bin (t, f) is the one-hot IBM label of that bin, so the embeddings separate
    the two known sources perfectly."""

    def __init__(self, labels: torch.Tensor):  # [B, T, F] int in {0, 1}
        super().__init__()
        self.labels = labels

    def embed(self, feats: torch.Tensor) -> torch.Tensor:
        return nn.functional.one_hot(self.labels, 2).float() * 0.9 + 0.05


class Pairs(torch.utils.data.Dataset):
    def __init__(self, refs: torch.Tensor):  # [E, 2, N]
        self.refs = refs

    def __len__(self) -> int:
        return len(self.refs)

    def __getitem__(self, i: int) -> dict:
        return {"mix": self.refs[i].sum(0), "sources": self.refs[i]}


def test_perfect_embeddings_give_the_ideal_binary_mask_score(tmp_path):
    stft = STFT(STFTConfig())
    refs = torch.stack([_sources(0), _sources(1)])  # [E=2, C=2, N]
    mix = refs.sum(1)
    spec = stft(mix)  # [E, T, F]
    src_spec = stft(refs)  # [E, C, T, F]
    labels = src_spec.abs().argmax(1)  # IBM: the louder source owns the bin
    ibm = nn.functional.one_hot(labels, 2).permute(0, 3, 1, 2).float()  # [E, C, T, F]
    est_ibm = stft.inverse(ibm * spec.unsqueeze(1), N)
    expected = si_sdr(est_ibm.double(), refs.double(), zero_mean=True).numpy()  # [E, C]
    assert expected.min() > 5.0  # a meaningful case: IBM separates, but not perfectly

    sep = ClusterSeparator(OracleNet(labels), stft, k=2, seed=3)
    res = evaluate(
        sep, Pairs(refs), ["low", "high"], tmp_path, {"stage": "zeroshot"}, batch_size=2, align=match_to_references
    )
    np.testing.assert_allclose(res["per_source"]["low"]["mean"], expected[:, 0].mean(), atol=1e-4)
    np.testing.assert_allclose(res["per_source"]["high"]["mean"], expected[:, 1].mean(), atol=1e-4)
    assert (tmp_path / "scores.csv").read_text().count("\n") == 1 + 2 * 2

    # without the permutation step the clusters come in k-means' order: on at least one of several
    # seeds that order is swapped, and the aligned score is unchanged by it
    swapped = 0
    for seed in range(6):
        raw, _, _ = score_excerpts(ClusterSeparator(OracleNet(labels), stft, k=2, seed=seed), Pairs(refs), 2)
        swapped += int(not np.allclose(raw, expected, atol=1e-4))
        scores, _, _ = score_excerpts(
            ClusterSeparator(OracleNet(labels), stft, k=2, seed=seed), Pairs(refs), 2, align=match_to_references
        )
        np.testing.assert_allclose(scores, expected, atol=1e-4)
    assert swapped > 0


def test_a_swapped_permutation_is_resolved():
    refs = torch.stack([_sources(0), _sources(1)])  # [2, 2, N]
    good = refs + 0.1 * torch.stack([_sources(5), _sources(6)])
    swapped = good.flip(1)  # excerpt-wise: clusters in the opposite order
    mixed = torch.stack([good[0], swapped[1]])  # one excerpt in order, one swapped
    out = match_to_references(mixed, refs)
    assert torch.equal(out, good)
    # three estimates for two references: the spare one (silence here) is dropped
    spare = torch.cat([torch.zeros(2, 1, N), swapped], 1)
    assert torch.equal(match_to_references(spare, refs), good)


def test_an_empty_cluster_never_beats_a_genuine_estimate():
    refs = _sources(0)[:1][None]  # one audible source
    poor = 0.2 * refs[0, 0] + _sources(0)[1]  # mostly the other instrument: a poor estimate, below 0 dB
    est = torch.stack([torch.zeros(N), poor])[None]  # cluster 1 is empty
    out = match_to_references(est, refs)
    assert torch.equal(out[0, 0], poor)


def test_a_silent_reference_does_not_steer_the_assignment():
    refs = _sources(0)[None].clone()
    refs[0, 1] = 0.0  # the second source is silent in this excerpt
    est = torch.stack([0.5 * refs[0, 0] + 0.01 * _sources(3)[0], refs[0, 0]])[None]  # est 1 is exact
    out = match_to_references(est, refs)
    assert torch.equal(out[0, 0], refs[0, 0])  # the exact estimate goes to the audible source


def test_kmeans_labels_follow_the_embedding_groups():
    g = torch.Generator().manual_seed(0)
    t, f = 20, 30
    truth = (torch.arange(f)[None, :] >= 12).long().expand(t, f)  # two groups of bins
    centres = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    emb = centres[truth] + 0.05 * torch.randn(t, f, 3, generator=g)
    mag = torch.ones(t, f)
    # quiet bins (60 dB down, below the 40-dB floor) hold embeddings unlike either group, as
    # untrained near-silent bins do; they are not fitted, only assigned
    quiet = torch.zeros(t, f, dtype=torch.bool)
    quiet[:, :4] = True
    mag[quiet] = 1e-3
    emb[quiet] = torch.tensor([0.0, 0.0, 1.0])
    labels = kmeans_labels(emb, mag, 2, seed=1, floor_db=40.0)
    loud = ~quiet
    agree = (labels[loud] == truth[loud]).float().mean().item()
    assert agree in (0.0, 1.0)  # the loud bins are split exactly along the groups (up to naming)
    # the same excerpt and seed give the same labels; a subset fit still finds the groups
    assert torch.equal(labels, kmeans_labels(emb, mag, 2, seed=1, floor_db=40.0))
    sub = kmeans_labels(emb, mag, 2, seed=1, floor_db=40.0, max_fit_bins=50)
    assert (sub[loud] == truth[loud]).float().mean().item() in (0.0, 1.0)


def test_a_silent_mixture_is_one_cluster():
    labels = kmeans_labels(torch.rand(5, 7, 4), torch.zeros(5, 7), 3)
    assert labels.shape == (5, 7) and int(labels.max()) == 0


def test_fewer_estimates_than_references_is_refused():
    with pytest.raises(ValueError, match="cannot cover"):
        match_to_references(torch.zeros(1, 1, 8), torch.zeros(1, 3, 8))


class BandNet(FakeNet):
    """Embeds every bin by its frequency band alone: below ``cut`` one group, above it the other."""

    def __init__(self, cut: int):
        super().__init__()
        self.cut = cut

    def embed(self, feats: torch.Tensor) -> torch.Tensor:
        high = (torch.arange(feats.shape[-1]) >= self.cut).long().expand(feats.shape)
        return nn.functional.one_hot(high, 2).float()


def test_centroids_fitted_once_keep_each_cluster_the_same_across_chunks():
    stft = STFT(STFTConfig())
    cut = 32  # bin 32 = 1000 Hz: the low tone's harmonics lie below, the high tone's above
    chunks = [_sources(s).sum(0, keepdim=True) for s in (0, 1, 2)]  # one recording in three chunks [1, N]
    sep = CentroidSeparator.for_recording(BandNet(cut), stft, chunks, k=2, seed=0)
    band = (torch.arange(257) >= cut).float()
    orders = set()
    for x in chunks:
        spec = stft(x)
        expected = stft.inverse(torch.stack([1 - band, band])[None, :, None, :] * spec.unsqueeze(1), N)
        out = sep(x)
        order = (0, 1) if torch.allclose(out, expected, atol=1e-5) else (1, 0)
        torch.testing.assert_close(out[:, list(order)], expected, atol=1e-5, rtol=0)
        orders.add(order)
    assert len(orders) == 1  # the same cluster is the same band in every chunk


def test_a_silent_recording_is_refused():
    with pytest.raises(ValueError, match="silent"):
        CentroidSeparator.for_recording(BandNet(32), STFT(STFTConfig()), [torch.zeros(1, N)], k=2)


def test_the_probe_runs_where_the_trainer_runs():
    from omegaconf import OmegaConf

    from transfersep.run.initial import run_device
    from transfersep.run.point import PlanError

    def trainer(acc: str):
        return OmegaConf.create({"trainer": {"accelerator": acc}})

    assert run_device(trainer("cpu")).type == "cpu"
    assert run_device(trainer("auto")).type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(PlanError, match="trainer.accelerator=tpu"):
        run_device(trainer("tpu"))
    if not torch.cuda.is_available():
        with pytest.raises(PlanError, match="no CUDA device"):
            run_device(trainer("gpu"))


# -- the probe of a MixIT pretraining ----------------------------------------------------------
BACH10 = ["violin", "clarinet", "saxophone", "bassoon"]


def _probe_config(tmp_path, pretrain: str, *extra: str):
    from project import compose
    from transfersep.model.objectives import split_name

    corpus, objective = split_name(pretrain)  # the pretraining as its folder names it
    overrides = [f"pretrain={corpus}", f"objective={objective}", *extra]
    return compose(["experiment=tiny", "data.generated=true", "logger=csv", *overrides], tmp_path / "runs")


def _pretrained_package(tmp_path, pretrain: str, *extra: str):
    """A pretraining run's system as ``build_system`` makes it (untrained), exported as a package."""
    from transfersep.model.export import export_model
    from transfersep.run.initial import build_system
    from transfersep.run.plan import make_plan

    cfg = _probe_config(tmp_path, pretrain, *extra)
    plan = make_plan(cfg)
    assert plan.phase == "pretrain"
    torch.manual_seed(0)
    system = build_system(cfg, plan, ["mixture1", "mixture2"] if "mixit" in pretrain else ["bass", "drums", "other"])
    return export_model(system, tmp_path / f"{pretrain}.safetensors"), system


def _brute_force_group_scores(outputs: torch.Tensor, refs: torch.Tensor) -> np.ndarray:
    """[C] SI-SDR of the C sums of the best assignment of the M outputs (naive formula, every
    assignment in a loop, -60 dB floor, silent references neither steering nor scored: NaN)."""
    import itertools

    from oracles import naive_sisdr

    r = refs.double().numpy()
    c, m = r.shape[0], outputs.shape[0]
    audible = [20 * math.log10(np.std(r[j]) + 1e-300) >= -60 for j in range(c)]
    best, best_scores = -math.inf, None
    for a in itertools.product(range(c), repeat=m):
        sums = [
            sum((outputs[i].double().numpy() for i in range(m) if a[i] == j), np.zeros(r.shape[1])) for j in range(c)
        ]
        scores = np.array(
            [
                (-60.0 if not np.any(s - s.mean()) else max(-60.0, naive_sisdr(s, r[j]))) if audible[j] else np.nan
                for j, s in enumerate(sums)
            ]
        )
        if np.nanmean(scores) > best:
            best, best_scores = np.nanmean(scores), scores
    return best_scores


def test_the_probe_of_a_mixit_model_groups_its_outputs(tmp_path):
    import csv
    import json

    from transfersep.data import generated
    from transfersep.model.loading import load_model
    from transfersep.run.plan import make_plan
    from transfersep.run.probe import run_probe

    pkg, system = _pretrained_package(tmp_path, "slakh_mixit", "pretrain.mixit.outputs=3")
    assert system.source_names == ["output1", "output2", "output3"] and system.hparams.objective == "mixit"
    cfg = _probe_config(tmp_path, "slakh_mixit", "downstream=bach10", "finetune=zeroshot", f"+init_from={pkg}")
    plan = make_plan(cfg)
    dm = generated.build(BACH10, 1.0, 2, 4, seed=0, n_val=2, n_test=4)
    result = run_probe(cfg, plan, dm)

    assert result["extra"]["method"] == "mixit-grouping" and result["extra"]["objective"] == "mixit"
    assert result["extra"]["outputs"] == 3 and result["sources"] == BACH10
    rows = list(csv.DictReader((plan.run_dir / "scores.csv").open()))
    got = np.array([float(r["sisdr_db"]) for r in rows]).reshape(4, len(BACH10))
    lm = load_model(pkg)
    for i in range(4):
        item = dm.test_set[i]
        outputs = lm.separate(item["mix"][None])[0]  # [3, N]
        np.testing.assert_allclose(got[i], _brute_force_group_scores(outputs, item["sources"]), atol=1e-4)
    assert json.loads((plan.run_dir / "result.json").read_text())["extra"]["method"] == "mixit-grouping"


def test_the_probe_of_a_dc_model_clusters_its_embeddings(tmp_path):
    from transfersep.data import generated
    from transfersep.run.plan import make_plan
    from transfersep.run.probe import run_probe

    pkg, system = _pretrained_package(tmp_path, "slakh")
    assert system.hparams.objective == "dc" and system.source_names == ["bass", "drums", "other"]
    cfg = _probe_config(tmp_path, "slakh", "downstream=bach10", "finetune=zeroshot", f"+init_from={pkg}")
    result = run_probe(cfg, make_plan(cfg), generated.build(BACH10, 1.0, 2, 4, seed=0, n_val=2, n_test=2))
    assert result["extra"]["method"] == "dc-kmeans" and result["extra"]["objective"] == "dc"
    assert result["n_excerpts"] == 2


def test_a_bad_mixit_setting_is_one_line_naming_the_key(tmp_path):
    from transfersep.run.errors import ConfigValueError

    with pytest.raises(ConfigValueError, match=r"^pretrain.mixit.outputs=1: .*pretrain.mixit.outputs=4$"):
        _pretrained_package(tmp_path, "slakh_mixit", "pretrain.mixit.outputs=1")
