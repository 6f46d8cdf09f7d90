"""MixIT items (two gained mixtures of two different tracks) and the self-supervised wiring of the
pretraining stage: real corpora read unlabeled, the generated stand-in, and what is refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from torch.utils.data import DataLoader

import datatrees
from oracles import reference_16k
from project import CONF
from transfersep.data import build_datamodule, mixtures
from transfersep.data.augment import AugmentSpec
from transfersep.data.cache import StemCache
from transfersep.data.index import DatasetError
from transfersep.data.mixit import MixturePairs
from transfersep.data.registry import build_index
from transfersep.model import objectives

N = 8000  # 0.5 s excerpts
GAIN_DB = 6.0
# constant tracks a factor 5 apart: with gains within +-6 dB (x0.5 .. x2) their ranges cannot overlap,
# so the level of a mixture names its track without asking the tool
LEVELS = {"a.wav": 0.004, "b.wav": 0.02, "sub/c.wav": 0.1, "sub/d.wav": 0.5}


@pytest.fixture(scope="module")
def constant_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("constant")
    for name, level in LEVELS.items():
        datatrees.write(root / name, np.full((16000, 1), level, np.float32), 16000, subtype="FLOAT")
    datatrees.write(root / "silent.wav", np.zeros((16000, 1), np.float32), 16000, subtype="FLOAT")
    return root


def pairs(root: Path, cache_dir: Path, split: str = "train", seed: int = 0, **kw) -> MixturePairs:
    tracks = mixtures.index(root).tracks  # every file, whatever its holdout split
    return MixturePairs(tracks, StemCache(cache_dir), N / 16000, seed, split, 1000, GAIN_DB, root=str(root), **kw)


def identify(x: torch.Tensor) -> tuple[str, float]:
    """(track, gain in dB) of a constant excerpt, from its level alone."""
    assert float(x.max() - x.min()) < 1e-6 * float(x.abs().max())  # one constant track, whole
    level = float(x.mean())
    for name, ref in LEVELS.items():
        if ref * 10 ** (-GAIN_DB / 20) * 0.999 <= level <= ref * 10 ** (GAIN_DB / 20) * 1.001:
            return name, 20 * np.log10(level / ref)
    raise AssertionError(f"level {level} matches no track")


def test_two_gained_mixtures_of_two_different_tracks(constant_root, tmp_path):
    ds = pairs(constant_root, tmp_path / "cache")
    seen, gains = set(), []
    for i in range(60):
        item = ds[i]
        assert item["sources"].shape == (2, N) and item["mix"].shape == (N,)
        assert item["sources"].dtype == torch.float32
        assert torch.equal(item["mix"], item["sources"].sum(0))
        (t1, g1), (t2, g2) = identify(item["sources"][0]), identify(item["sources"][1])
        assert t1 != t2  # never the silent file, never one track twice
        assert -GAIN_DB - 1e-3 <= g1 <= GAIN_DB + 1e-3 and -GAIN_DB - 1e-3 <= g2 <= GAIN_DB + 1e-3
        plan = ds.describe(i)
        assert plan["tracks"] == [t1, t2]
        assert plan["gains_db"] == pytest.approx([g1, g2], abs=1e-3)
        seen |= {t1, t2}
        gains += [g1, g2]
    assert seen == set(LEVELS)
    assert min(gains) < -GAIN_DB / 2 and max(gains) > GAIN_DB / 2  # drawn over the range, not fixed
    assert abs(np.mean(gains)) < 1.5  # uniform: centred on 0 dB (120 draws, sd of the mean ~0.3 dB)


def test_item_is_a_function_of_seed_split_and_index(constant_root, tmp_path):
    a = pairs(constant_root, tmp_path / "a")
    b = pairs(constant_root, tmp_path / "b")
    forward = [a[i]["sources"] for i in range(12)]
    backward = [b[i]["sources"] for i in reversed(range(12))][::-1]
    assert all(torch.equal(x, y) for x, y in zip(forward, backward))
    loader = DataLoader(b, batch_size=3, sampler=list(range(12)), num_workers=2)
    batched = torch.cat([batch["sources"] for batch in loader])
    assert torch.equal(batched, torch.stack(forward))
    other_seed = pairs(constant_root, tmp_path / "a", seed=1)
    val = pairs(constant_root, tmp_path / "a", split="val")
    assert any(not torch.equal(other_seed[i]["sources"], forward[i]) for i in range(12))
    assert any(not torch.equal(val[i]["sources"], forward[i]) for i in range(12))


def test_each_mixture_is_augmented_on_its_own(trees, tmp_path):
    idx = build_index("slakh", [str(trees["slakh"])], unlabeled=True)
    spec = AugmentSpec(pitch_semitones=(-3.0, 3.0), stretch_rate=(0.8, 1.2))
    ds = MixturePairs(idx.split("train"), StemCache(tmp_path / "c"), 0.5, 0, "train", 100, GAIN_DB, spec)
    for i in range(3):
        item = ds[i]
        assert item["sources"].shape == (2, N) and torch.equal(item["mix"], item["sources"].sum(0))
        plan = ds.describe(i)
        assert plan["semitones"][0] != plan["semitones"][1] and plan["rate"][0] != plan["rate"][1]
        assert all(0.8 <= r <= 1.2 for r in plan["rate"]) and all(abs(s) <= 3.1 for s in plan["semitones"])


def test_a_single_track_cannot_make_pairs(tmp_path):
    root = tmp_path / "one"
    datatrees.write(root / "only.wav", datatrees.noise("only", 1.0, 16000), 16000)
    with pytest.raises(DatasetError, match="MixIT needs at least two tracks") as e:
        pairs(root, tmp_path / "cache")
    assert str(root) in str(e.value)


def make_cfg(trees, tmp_path, *overrides: str):
    paths = [
        f"paths.slakh={trees['slakh']}",
        f"paths.musdb={trees['musdb']}",
        f"paths.mixtures={trees['remixpacks']}",  # any folder of audio: producers' stems as mixtures
        f"paths.cache_dir={tmp_path / 'cache'}",
    ]
    data = ["data.excerpt_seconds=0.5", "data.batch_size=2", "data.n_val=3", "data.n_test=4", "data.num_workers=0"]
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        return compose("train", overrides=[*paths, *data, *overrides])


def datamodule(cfg, stage: str, steps: int):
    """The run's DataModule as a run builds it: with its objective's entry."""
    return build_datamodule(cfg, stage, steps, objectives.of_config(cfg))


@pytest.mark.parametrize("pretrain", ["slakh", "mixtures"])
def test_mixit_pretraining_serves_pairs(trees, tmp_path, pretrain):
    dm = datamodule(make_cfg(trees, tmp_path, f"pretrain={pretrain}", "objective=mixit", "augment=none"), "pretrain", 2)
    assert dm.source_names == ["mixture1", "mixture2"] and dm.description["objective"] == "mixit"
    batches = list(dm.train_dataloader())
    assert len(batches) == 2
    b = batches[0]
    assert b["sources"].shape == (2, 2, N) and torch.equal(b["mix"], b["sources"].sum(1))
    v = next(iter(dm.val_dataloader()))
    assert v["sources"].shape == (2, 2, N) and len(dm.val_set) == 3
    again = datamodule(make_cfg(trees, tmp_path, f"pretrain={pretrain}", "objective=mixit", "seed=5"), "pretrain", 2)
    assert all(torch.equal(dm.val_set[i]["sources"], again.val_set[i]["sources"]) for i in range(3))


# the stems pretrain=slakh mixes (Bass, Drums, Piano, Guitar) of the tree's two training tracks
SLAKH_STEMS = {"Track00001": {"S00", "S01", "S03", "S04"}, "Track00002": {"S00", "S02"}}


def test_slakh_mixit_halves_are_the_stems_summed(trees, tmp_path):
    dm = datamodule(make_cfg(trees, tmp_path, "pretrain=slakh", "objective=mixit", "augment=none"), "pretrain", 2)
    root = Path(trees["slakh"])
    for i in range(3):
        item, plan = dm.train_set[i], dm.train_set.describe(i)
        assert set(plan["tracks"]) == {"Track00001", "Track00002"}  # the redux train split's two tracks
        for h in range(2):
            track = root / "train" / plan["tracks"][h]
            stems = [str(p) for p in sorted((track / "stems").glob("*.flac")) if p.stem in SLAKH_STEMS[track.name]]
            ref = reference_16k(stems)[plan["starts"][h] : plan["starts"][h] + N] * 10 ** (plan["gains_db"][h] / 20)
            x = item["sources"][h].double().numpy()
            low = lambda y: np.fft.irfft(np.fft.rfft(y)[: 6000 * N // 16000], N)[200:-200]  # noqa: E731
            assert np.sqrt(np.mean((low(x) - low(ref)) ** 2) / np.mean(low(ref) ** 2)) < 0.03


@pytest.mark.parametrize("pretrain", ["slakh", "mixtures"])
def test_bootstrap_pretraining_serves_plain_mixtures(trees, tmp_path, pretrain):
    dm = datamodule(make_cfg(trees, tmp_path, f"pretrain={pretrain}", "objective=bootstrap"), "pretrain", 1)
    assert dm.source_names == ["mix"] and dm.description["unlabeled"] is True
    b = next(iter(dm.train_dataloader()))
    assert b["sources"].shape == (2, 1, N) and torch.equal(b["sources"][:, 0], b["mix"])


@pytest.mark.parametrize(
    "overrides,match",
    [
        (["pretrain=slakh", "objective=mixit", "augment=incoherent"], "augment=incoherent draws each stem class"),
        (["pretrain=mixtures", "objective=bootstrap", "augment=incoherent"], "use augment=none, pitch or stretch"),
        (
            ["pretrain=slakh", "objective=bootstrap", "pretrain.dataset.train_mixing=incoherent"],
            "train_mixing=incoherent",
        ),
        (["pretrain=mixtures", "objective=dc"], "objective=dc trains on stems"),
        (["pretrain=mixtures", "objective=mixit", "+pretrain.dataset.unlabeled=false"], "follows from the pretraining"),
        (["pretrain=slakh", "objective=mixit", "+pretrain.dataset.unlabeled=true"], "drop the key"),
    ],
)
def test_incoherent_or_supervised_use_of_mixtures_is_refused(trees, tmp_path, overrides, match):
    with pytest.raises(DatasetError, match=match) as e:
        datamodule(make_cfg(trees, tmp_path, *overrides), "pretrain", 1)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    "pretrain,sources",
    [
        ("slakh", (3,)),
        ("slakh_mixit", (2,)),
        ("mixtures_mixit", (2,)),
        ("slakh_boot", (1,)),
        ("mixtures_boot", (1,)),
    ],
)
def test_generated_items_have_each_objectives_shapes(trees, tmp_path, pretrain, sources):
    corpus, objective = objectives.split_name(pretrain)
    cfg = make_cfg(trees, tmp_path, f"pretrain={corpus}", f"objective={objective}", "data.generated=true")
    dm = datamodule(cfg, "pretrain", 2)
    names = {"slakh_mixit": ["mixture1", "mixture2"], "mixtures_mixit": ["mixture1", "mixture2"]}
    assert dm.source_names == names.get(pretrain, ["mix"] if "boot" in pretrain else list(cfg.pretrain.dataset.sources))
    for ds in (dm.train_set, dm.val_set):
        for i in range(4):
            item = ds[i]
            assert item["sources"].shape == (*sources, N) and item["mix"].shape == (N,)
            assert torch.equal(item["mix"], item["sources"].sum(0))
            if pretrain != "slakh":  # a mixture always holds sound (a dc stem may be silent)
                assert (item["sources"].abs().amax(-1) > 0).all()
    if "mixit" in pretrain:  # two independent mixtures, not one mixture twice at two gains
        s = dm.train_set[0]["sources"].double()
        corr = float((s[0] @ s[1]) / (s[0].norm() * s[1].norm()))
        assert abs(corr) < 0.5
