"""LibriMix and WSJ0-mix as their generators lay them out: the index, the errors, ``--summary``,
and the DataModule a speech pretraining gets (dynamic mixing of speakers, 8 kHz band note)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

import speechtrees
from project import CONF
from transfersep.data import build_datamodule, librimix, wsj0mix
from transfersep.data.__main__ import main as inspect_main
from transfersep.data.index import DatasetError
from transfersep.data.registry import build_index


def test_librimix_index_reads_ids_not_the_generating_machines_paths(trees):
    idx = librimix.index(trees["librimix"])
    assert idx.layout == "Libri2Mix/wav16k/min" and idx.source_names == ["s1", "s2"]
    assert [len(idx.split(s)) for s in ("train", "val", "test")] == [4, 1, 1]
    t = idx.split("val")[0]
    assert t.name == "700-1000-0000_712-1000-0001" and t.corpus == "librimix"
    base = trees["librimix"].resolve() / "Libri2Mix" / "wav16k" / "min" / "dev"
    assert [r.path for r in t.sources["s1"] + t.sources["s2"]] == [
        str(base / "s1" / f"{t.name}.wav"),
        str(base / "s2" / f"{t.name}.wav"),
    ]
    ref = t.sources["s2"][0]
    assert (ref.sample_rate, ref.channels, ref.frames) == (16000, 1, 24000)  # the CSV's length
    assert not any("band" in n for n in idx.notes)  # 16 kHz: the whole band
    assert any(n.startswith("8 speakers in the training subsets") for n in idx.notes)


def test_libri3mix_8k_max_with_noise_and_subsets(tmp_path):
    root = speechtrees.librimix(
        tmp_path / "LibriMix",
        n_src=3,
        rate="8k",
        mode="max",
        counts={"train-100": 2, "train-360": 2, "dev": 1, "test": 1},
        types=("mix_clean", "mix_both", "mix_single"),
    )
    idx = librimix.index(root, ["s1", "s2", "s3", "noise"], n_src=3, rate="8k", mode="max")
    assert len(idx.split("train")) == 4  # train-100 + train-360
    t = idx.tracks[0]
    assert {k: Path(v[0].path).parent.name for k, v in t.sources.items()} == {
        "s1": "s1",
        "s2": "s2",
        "s3": "s3",
        "noise": "noise",
    }
    assert t.sources["s1"][0].sample_rate == 8000
    assert idx.notes[0].startswith("wav8k: 8000 Hz audio resampled to 16000 Hz; the band stops at 4 kHz")
    only = librimix.index(root / "Libri3Mix", n_src=3, rate="8k", mode="max", subsets=["train-360", "test"])
    assert [t.split for t in only.tracks] == ["train", "train", "test"]  # the root may be Libri3Mix itself


def test_librimix_without_metadata_or_with_a_missing_file(trees, tmp_path):
    root = shutil.copytree(trees["librimix"], tmp_path / "LibriMix")
    base = root / "Libri2Mix" / "wav16k" / "min"
    (base / "metadata" / "mixture_dev_mix_clean.csv").unlink()
    victim = sorted((base / "train-100" / "s2").iterdir())[1]
    victim.unlink()
    (base / "train-100" / "s1" / "stray.wav").write_bytes((base / "dev" / "s1").iterdir().__next__().read_bytes())
    idx = librimix.index(root)
    assert len(idx.split("train")) == 3 and len(idx.split("val")) == 1
    notes = "\n".join(idx.notes)
    assert "dev: no metadata/mixture_dev_mix_clean.csv; mixtures listed from dev/s1/" in notes
    assert f"1 mixtures left out for a missing file (train/{victim.stem}: no s2 file)" in notes
    assert "train-100: 1 files not in the metadata, ignored (e.g. stray.wav)" in notes


@pytest.mark.parametrize(
    "options,sources,message",
    [
        ({"n_src": 3}, None, "expected the folder {root}/Libri3Mix (found Libri2Mix: set n_src)"),
        ({"rate": "8k"}, None, "expected the folder {root}/Libri2Mix/wav8k/min (found wav16k/min: set rate and mode)"),
        ({"subsets": ["train-360"]}, None, "expected the folder {root}/Libri2Mix/wav16k/min/train-360"),
        ({"subsets": ["train"]}, None, "the subsets are train-100, train-360, dev, test"),
        ({}, ["s1", "s2", "noise"], "expected the folder {root}/Libri2Mix/wav16k/min/train-100/noise: noise/ exists"),
        ({}, ["s1"], "set pretrain.dataset.sources=[s1,s2]"),
        ({"n_src": 4}, None, "pretrain.dataset.n_src=4: expected 2 or 3"),
        ({"mode": "both"}, None, "pretrain.dataset.mode='both': expected min or max"),
    ],
)
def test_librimix_wrong_layout_or_options_stop_in_one_line(trees, options, sources, message):
    root = trees["librimix"].resolve()
    with pytest.raises(DatasetError) as e:
        librimix.index(root, sources, **options)
    assert message.format(root=root) in str(e.value) and "\n" not in str(e.value)


def test_wsj0mix_index_splits_speakers_and_band(trees):
    idx = wsj0mix.index(trees["wsj0mix"])
    assert idx.layout == "2speakers/wav8k/min" and idx.source_names == ["s1", "s2"]
    assert [len(idx.split(s)) for s in ("train", "val", "test")] == [4, 1, 1]
    t = idx.split("train")[0]
    assert t.name == speechtrees.wsj0_name(2, 0, "tr") and Path(t.sources["s2"][0].path).parent.name == "s2"
    assert t.sources["s1"][0].frames == 12000  # 1.5 s at 8 kHz, from the header
    assert idx.notes[0].startswith("wav8k: 8000 Hz audio resampled to 16000 Hz; the band stops at 4 kHz")
    assert any(n.startswith("4 speakers in the training subsets") for n in idx.notes)


def test_wsj0mix_errors_name_the_folder(trees, tmp_path):
    root = trees["wsj0mix"].resolve()
    with pytest.raises(DatasetError, match=r"wsj0mix: has no noise track"):
        wsj0mix.index(root, ["s1", "s2", "noise"])
    with pytest.raises(DatasetError, match=rf"expected the folder {root}/3speakers \(found 2speakers: set n_src\)"):
        wsj0mix.index(root, n_src=3)
    with pytest.raises(DatasetError, match=rf"expected the folder {root}/2speakers/wav16k/min"):
        wsj0mix.index(root, rate="16k")
    broken = shutil.copytree(root, tmp_path / "w")
    shutil.rmtree(broken / "2speakers" / "wav8k" / "min" / "cv" / "s2")
    with pytest.raises(DatasetError, match=r"expected the folder .*/cv/s2 \(2speakers has mix, s1, s2"):
        wsj0mix.index(broken)
    with pytest.raises(DatasetError, match=r"librimix: expected the folder .*/Libri2Mix \(LibriMix"):
        librimix.index(root)


@pytest.mark.parametrize("name", ["librimix", "wsj0mix"])
def test_summary_command(trees, name, capsys):
    assert inspect_main([name, str(trees[name]), "--summary"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dataset"] == name and out["sources"] == ["s1", "s2"]
    assert (out["train"]["tracks"], out["val"]["tracks"], out["test"]["tracks"]) == (4, 1, 1)
    assert any("speakers in the training subsets" in n for n in out["notes"])
    assert inspect_main([name, str(trees["slakh"]), "--summary"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {name}: expected the folder ") and "\n" not in err


def test_librimix_slakh_joins_speech_and_music(trees):
    idx = build_index("librimix_slakh", [str(trees["librimix"]), str(trees["slakh"])])
    assert idx.source_names == ["s1", "s2", "bass", "drums", "piano_guitar"]
    speech = [t for t in idx.tracks if t.corpus == "librimix"]
    music = [t for t in idx.tracks if t.corpus == "slakh"]
    assert len(speech) == 6 and music
    assert all(t.has("s1") and not t.has("bass") for t in speech)
    assert all(not t.has("s1") and set(t.sources) == set(idx.source_names) for t in music)
    assert idx.layout == "librimix:Libri2Mix/wav16k/min+slakh:redux"
    with pytest.raises(DatasetError, match="none of the sources .* is slakh's"):
        build_index("librimix_slakh", [str(trees["librimix"]), str(trees["slakh"])], ["s1", "s2"])


def make_cfg(trees, tmp_path, *overrides: str):
    paths = [
        f"paths.librimix={trees['librimix']}",
        f"paths.wsj0mix={trees['wsj0mix']}",
        f"paths.slakh={trees['slakh']}",
        f"paths.cache_dir={tmp_path / 'cache'}",
    ]
    data = ["data.excerpt_seconds=0.5", "data.batch_size=2", "data.n_val=2", "data.n_test=2", "data.num_workers=0"]
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        return compose("train", overrides=[*paths, *data, *overrides])


@pytest.mark.parametrize(
    "pretrain,sources,train_mixing,band",
    [
        ("librimix", ["s1", "s2"], "incoherent", None),
        ("wsj0mix", ["s1", "s2"], "incoherent", 4000),
        ("librimix_slakh", ["s1", "s2", "bass", "drums", "piano_guitar"], "coherent", None),
    ],
)
def test_speech_pretraining_datamodule(trees, tmp_path, pretrain, sources, train_mixing, band):
    dm = build_datamodule(make_cfg(trees, tmp_path, f"pretrain={pretrain}"), "pretrain", 10)
    desc = dm.description
    assert dm.source_names == sources and desc["train_mixing"] == train_mixing
    assert desc["test_mixing"] == "coherent" and desc["band_limit_hz"] == band
    item = dm.train_set[0]
    assert tuple(item["sources"].shape) == (len(sources), 8000)
    assert (item["mix"] - item["sources"].sum(0)).abs().max() < 1e-6
    if train_mixing == "incoherent":  # dynamic mixing: the speakers come from different mixtures
        plans = [dm.train_set.describe(i)["tracks"] for i in range(8)]
        assert any(a != b for a, b in plans)
