"""The demo's speech corpus: LibriMix's layout and metadata as its generator writes them, the
LibriMix rules (distinct speakers, disjoint subsets, min mode, exact 16-bit sums), and the loader
reading it; the demo's corpus selection for speech pretrainings."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from transfersep.demo import corpus, librimix, texts
from transfersep.demo.run import corpus_of

BASE = Path("LibriMix/Libri2Mix/wav16k/min")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("speech_corpus")
    marker = corpus.build_corpus(out, "test", 0, only=["librimix"], workers=1, log=lambda *_: None)
    return out, marker


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_layout_metadata_and_exact_sums(built):
    out, marker = built
    base = out / BASE
    assert sorted(p.name for p in base.iterdir()) == ["dev", "metadata", "test", "train-100"]
    counts = librimix.PRESETS["test"]["mixtures"]
    for subset, n in counts.items():
        assert sorted(p.name for p in (base / subset).iterdir()) == ["mix_clean", "s1", "s2"]
        rows = read_csv(base / "metadata" / f"mixture_{subset}_mix_clean.csv")
        assert len(rows) == n
        assert list(rows[0]) == ["mixture_ID", "mixture_path", "source_1_path", "source_2_path", "length"]
        metrics = read_csv(base / "metadata" / f"metrics_{subset}_mix_clean.csv")
        assert list(metrics[0]) == ["mixture_ID", "source_1_SNR", "source_2_SNR"]
        for row in rows:
            mid = row["mixture_ID"]
            assert row["source_2_path"] == str(out.resolve() / BASE / subset / "s2" / f"{mid}.wav")
            s1, sr = sf.read(base / subset / "s1" / f"{mid}.wav", dtype="int16")
            s2, _ = sf.read(base / subset / "s2" / f"{mid}.wav", dtype="int16")
            mix, _ = sf.read(base / subset / "mix_clean" / f"{mid}.wav", dtype="int16")
            assert sr == 16000 and s1.ndim == 1 and len(s1) == len(s2) == len(mix) == int(row["length"])
            assert np.array_equal(mix.astype(np.int32), s1.astype(np.int32) + s2.astype(np.int32))
            assert np.abs(mix).max() <= 0.9 * 32767 + 1
            assert min(np.sqrt(np.mean(x.astype(np.float64) ** 2)) for x in (s1, s2)) > 100  # both speak
    items = marker["datasets"]["librimix"]["items"]
    assert len(items) == sum(counts.values())


def test_speakers_differ_within_mixtures_and_across_subsets(built):
    _, marker = built
    items = marker["datasets"]["librimix"]["items"]
    by_subset: dict[str, set[int]] = {}
    for it in items:
        subset = it["path"].split("/")[3]
        ids = [s["id"] for s in it["speakers"]]
        assert len(set(ids)) == 2
        assert Path(it["path"]).stem == "_".join(s["utterance"] for s in it["speakers"])
        assert all(s["utterance"].startswith(f"{s['id']}-") for s in it["speakers"])
        by_subset.setdefault(subset, set()).update(ids)
    assert set(by_subset) == {"train-100", "dev", "test"}
    assert not (by_subset["train-100"] & by_subset["dev"]) and not (by_subset["dev"] & by_subset["test"])
    # dev and test read only the held-out end of the text
    held = {u for _, u in texts.sentences()[int(round(len(texts.sentences()) * (1 - librimix.HELD_OUT))) :]}
    for it in items:
        if not it["path"].split("/")[3].startswith("train"):
            assert all(s["text"].startswith(tuple(held)) for s in it["speakers"])


def test_the_loader_reads_it(built):
    from transfersep.data import librimix as loader

    out, _ = built
    idx = loader.index(out / "LibriMix")
    assert [len(idx.split(s)) for s in ("train", "val", "test")] == [4, 1, 1]
    assert not any("no metadata" in n or "left out" in n or "not in the metadata" in n for n in idx.notes)


def test_text_is_a_few_hundred_sentences():
    units = texts.sentences()
    assert len(units) >= 190 and {w for w, _ in units} == set(texts.WORKS)
    assert max(len(u.split()) for _, u in units) <= 30


def test_missing_espeak_names_the_install_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(librimix.shutil, "which", lambda name: None if name == "espeak-ng" else "/usr/bin/" + name)
    assert corpus.main([str(tmp_path / "out"), "--size", "test", "--only", "librimix"]) == 2
    assert "apt-get install -y espeak-ng" in capsys.readouterr().err


def test_demo_renders_the_corpora_a_pretraining_reads():
    assert corpus_of("librimix") == ["librimix"]
    assert corpus_of("librimix_slakh") == ["librimix", "slakh"]
    assert corpus_of("mixtures") == ["mixtures"]
