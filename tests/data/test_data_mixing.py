"""On-the-fly mixing, checked against the source files read by an independent route."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf
import torch

import datatrees
from oracles import best_match, reference_16k
from transfersep.data import bach10, musdb, stems
from transfersep.data.cache import StemCache
from transfersep.data.mixing import ExcerptSet

SEC = 1.0
N = 16000


def refs_of(idx):
    """{(track, source): 16 kHz reference} computed without the tool's cache or resampler."""
    return {
        (t.name, s): reference_16k([r.path for r in refs]) for t in idx.tracks for s, refs in t.sources.items() if refs
    }


def locate(excerpt: np.ndarray, source: str, refs: dict) -> tuple[str, int, float]:
    """Best (track, lag, correlation) for one source excerpt among every track's references."""
    best = ("", -1, -1.0)
    for (track, s), ref in refs.items():
        if s != source:
            continue
        lag, corr = best_match(excerpt, ref)
        if corr > best[2]:
            best = (track, lag, corr)
    return best


@pytest.fixture(scope="module")
def musdb_set(trees, tmp_path_factory):
    idx = musdb.index(trees["musdb"])
    cache = StemCache(tmp_path_factory.mktemp("cache"), [str(trees["musdb"])])
    return idx, cache, refs_of(idx)


def test_coherent_excerpts_come_from_one_song_at_one_time(musdb_set):
    idx, cache, refs = musdb_set
    ds = ExcerptSet(idx.split("train"), idx.source_names, cache, SEC, "coherent", 0, "train", 100)
    for i in range(6):
        item = ds[i]
        assert item["sources"].shape == (2, N) and item["mix"].shape == (N,)
        assert torch.equal(item["mix"], item["sources"].sum(0))
        found = [locate(item["sources"][c].double().numpy(), s, refs) for c, s in enumerate(idx.source_names)]
        assert all(corr > 0.98 for _, _, corr in found), found
        assert len({(track, lag) for track, lag, _ in found}) == 1, found  # same song, same time
        plan = ds.describe(i)
        assert plan["tracks"] == [found[0][0]] * 2 and abs(plan["starts"][0] - found[0][1]) <= 1


def test_incoherent_excerpts_come_from_several_songs(musdb_set):
    idx, cache, refs = musdb_set
    ds = ExcerptSet(idx.split("train"), idx.source_names, cache, SEC, "incoherent", 0, "train", 100)
    mixed = 0
    for i in range(8):
        item = ds[i]
        assert torch.equal(item["mix"], item["sources"].sum(0))
        found = [locate(item["sources"][c].double().numpy(), s, refs) for c, s in enumerate(idx.source_names)]
        assert all(corr > 0.98 for _, _, corr in found)
        mixed += len({(track, lag) for track, lag, _ in found}) > 1
    assert mixed >= 6  # 3 training songs x many starts: a repeat of both is rare


def test_deterministic_by_seed_and_index(musdb_set):
    idx, cache, _ = musdb_set
    mk = lambda seed: ExcerptSet(idx.split("train"), idx.source_names, cache, SEC, "coherent", seed, "train", 10)  # noqa: E731
    a, b, c = mk(0), mk(0), mk(1)
    assert torch.equal(a[3]["sources"], b[3]["sources"])
    assert torch.equal(a[7]["mix"], b[7]["mix"])
    assert not torch.equal(a[3]["sources"], c[3]["sources"])
    assert not torch.equal(a[3]["sources"], a[4]["sources"])


def test_all_silent_excerpts_are_not_served(trees, tmp_path):
    root = tmp_path / "stems"
    sr = 44100
    for song in ("a", "b"):
        loud = datatrees.noise(f"sil/{song}", 3.0, sr)
        loud[: int(1.5 * sr)] = 0  # first half: every stem silent
        for stem in ("kick", "snare"):
            datatrees.write(root / "train" / song / f"{stem}.wav", loud * (1 if stem == "kick" else 0.5), sr)
    for stem in ("kick", "snare"):  # a song that is silent throughout
        datatrees.write(root / "train" / "silent" / f"{stem}.wav", np.zeros((3 * sr, 1), np.float32), sr)
    idx = stems.index(root, ["kick", "snare"], {"kick": ["kick"], "snare": ["snare"]})
    cache = StemCache(tmp_path / "cache", [str(root)])
    for mode in ("coherent", "incoherent"):
        ds = ExcerptSet(idx.split("train"), idx.source_names, cache, 0.5, mode, 0, "train", 40)
        for i in range(40):
            rms = ds[i]["sources"].pow(2).mean(1).sqrt()
            assert rms.max() > 1e-3, (mode, i, ds.describe(i))
            picks = ds.describe(i)["tracks"]
            assert ("silent" not in picks) if mode == "coherent" else (set(picks) != {"silent"})


def test_only_silence_is_an_error(tmp_path):
    root = tmp_path / "stems"
    for stem in ("kick", "snare"):
        datatrees.write(root / "train" / "s" / f"{stem}.wav", np.zeros((16000, 1), np.float32), 16000)
    idx = stems.index(root, ["kick", "snare"], {"kick": ["kick"], "snare": ["snare"]})
    ds = ExcerptSet(idx.tracks, idx.source_names, StemCache(tmp_path / "c"), 0.5, "coherent", 0, "train", 1)
    with pytest.raises(RuntimeError, match="silent in every source"):
        ds[0]


def test_short_tracks_are_zero_padded_and_missing_class_is_silence(trees, tmp_path):
    # a source a track lacks (a Slakh track without guitar) is silence in its excerpts
    idx = stems.index(trees["remixpacks"], ["snare", "kick_drum", "cymbals"], name="remixpacks", missing_sources="skip")
    (six,) = [t for t in idx.tracks if t.name == "Artist F - Six"]  # 3-s song
    six = replace(six, sources={**six.sources, "snare": []})
    ds = ExcerptSet([six], idx.source_names, StemCache(tmp_path / "c"), 5.0, "coherent", 0, "train", 3)
    item = ds[0]
    assert item["sources"].shape == (3, 80000)
    assert item["sources"][0].abs().max() == 0  # no snare stem: silence
    assert item["sources"][1, 48100:].abs().max() == 0  # beyond the 3-s song: padding
    assert item["sources"][1, :47900].abs().max() > 0


def test_bach10_train_incoherent_test_coherent(trees, tmp_path):
    idx = bach10.index(trees["bach10"])
    cache = StemCache(tmp_path / "c")
    train = ExcerptSet(idx.split("train"), idx.source_names, cache, SEC, "incoherent", 0, "train", 50)
    test = ExcerptSet(idx.split("test"), idx.source_names, cache, SEC, "coherent", 0, "test", 50)
    assert any(len(set(train.describe(i)["tracks"])) > 1 for i in range(10))
    assert all(test.describe(i)["tracks"] == ["10-NunBitten"] * 4 for i in range(10))
    # the violin source of a test excerpt is the violin file at the described time
    plan, item = test.describe(2), test[2]
    ref = reference_16k([str(trees["bach10"] / "10-NunBitten" / "10-NunBitten-violin.wav")])
    lag, corr = best_match(item["sources"][0].double().numpy(), ref)
    assert corr > 0.98 and abs(lag - plan["starts"][0]) <= 1
    assert sf.info(str(trees["bach10"] / "10-NunBitten" / "10-NunBitten-violin.wav")).samplerate == 44100
