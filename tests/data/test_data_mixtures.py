"""Any folder of audio as an unlabeled corpus, and any dataset read as mixtures only (``unlabeled``)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import datatrees
from oracles import reference_16k
from transfersep.data import mixtures
from transfersep.data.__main__ import main as inspect_main
from transfersep.data.cache import StemCache
from transfersep.data.index import DatasetError
from transfersep.data.registry import build_index


def tone(freq: float, seconds: float, sr: int, level: float = 0.3) -> np.ndarray:
    return (level * np.sin(2 * np.pi * freq * np.arange(int(seconds * sr)) / sr)).astype(np.float32)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Nested folders, three formats / rates / channel counts, and files that are not audio."""
    root = tmp_path_factory.mktemp("mixtures") / "my music"
    datatrees.write(root / "song.wav", datatrees.noise("m/song", 2.0, 16000), 16000)
    datatrees.write(root / "Album (2001)" / "disc 1" / "01 - intro.flac", datatrees.noise("m/intro", 1.5, 22050), 22050)
    stereo = np.stack([tone(440.0, 2.5, 44100), tone(1000.0, 2.5, 44100, 0.2)], axis=1)
    datatrees.write(root / "Album (2001)" / "stereo44.wav", stereo, 44100)
    (root / "readme.txt").write_text("not audio")
    (root / "Album (2001)" / "cover.jpg").write_bytes(b"\xff\xd8\xff")
    (root / "._song.wav").write_bytes(b"\x00\x05\x16\x07 resource fork")  # macOS metadata, not audio
    datatrees.write(root / ".trash" / "old.wav", datatrees.noise("m/old", 1.0, 16000), 16000)
    return root


def test_every_audio_file_under_the_folder_is_one_track(folder):
    idx = mixtures.index(folder)
    by_name = {t.name: t for t in idx.tracks}
    assert set(by_name) == {"song.wav", "Album (2001)/disc 1/01 - intro.flac", "Album (2001)/stereo44.wav"}
    assert idx.source_names == ["mix"] and idx.dataset == "mixtures"
    for t in idx.tracks:
        assert list(t.sources) == ["mix"] and len(t.sources["mix"]) == 1
    st = by_name["Album (2001)/stereo44.wav"].sources["mix"][0]
    assert (st.sample_rate, st.channels, st.frames) == (44100, 2, int(2.5 * 44100))
    assert by_name["Album (2001)/disc 1/01 - intro.flac"].seconds == pytest.approx(1.5)
    assert {t.split for t in idx.tracks} <= {"train", "val"} and not idx.split("test")
    assert len(idx.split("val")) == 1  # three files: one held out


def test_a_44k_stereo_file_is_cached_as_16k_mono(folder, tmp_path):
    t = next(t for t in mixtures.index(folder).tracks if t.name.endswith("stereo44.wav"))
    arr = StemCache(tmp_path / "cache", [str(folder)]).array(t.sources["mix"], t.corpus)
    assert arr.dtype == np.float32 and arr.ndim == 1 and len(arr) == pytest.approx(2.5 * 16000, abs=2)
    # channel mean then 16 kHz, by soundfile + scipy; pure tones sit far from either filter's transition band
    ref = reference_16k([t.sources["mix"][0].path])
    a, b = np.asarray(arr[400:-400], np.float64), ref[400 : len(arr) - 400]
    assert np.sqrt(np.mean((a - b) ** 2) / np.mean(b**2)) < 1e-2
    expected = 0.5 * (tone(440.0, 2.5, 16000) + tone(1000.0, 2.5, 16000, 0.2))  # the same, written down
    assert np.sqrt(np.mean((a - expected[400:-400]) ** 2) / np.mean(b**2)) < 1e-2


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
def test_compressed_formats_are_read(tmp_path):
    root = tmp_path / "compressed"
    src = datatrees.write(tmp_path / "src.wav", np.stack([tone(330.0, 1.0, 44100)] * 2, axis=1), 44100)
    root.mkdir()
    for name in ("a.mp3", "b.m4a"):
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-threads", "1", "-i", str(src), str(root / name)], check=True)
    idx = mixtures.index(root)
    cache = StemCache(tmp_path / "cache")
    for t in idx.tracks:
        x = np.asarray(cache.array(t.sources["mix"], t.corpus), np.float64)
        assert abs(len(x) - 16000) < 2000  # encoders add a little padding
        spectrum = np.abs(np.fft.rfft(x))
        assert np.argmax(spectrum) * 16000 / len(x) == pytest.approx(330.0, abs=3.0), t.name


def test_the_holdout_is_about_one_in_ten_and_stable():
    names = [f"artist {k // 10}/track {k}.mp3" for k in range(300)]
    held = mixtures.val_names(names)
    assert 15 <= len(held) <= 45
    more = mixtures.val_names(names + [f"new/{k}.wav" for k in range(100)])
    assert more & set(names) == held  # adding files never moves the files already there
    assert mixtures.val_names(list(reversed(names))) == held
    assert len(mixtures.val_names(["a.wav", "b.wav"])) == 1 and not mixtures.val_names(["a.wav"])
    assert len(mixtures.val_names([f"{k}.wav" for k in range(5)])) >= 2  # a MixIT validation pair


def test_the_split_does_not_depend_on_where_the_folder_lies(folder, tmp_path):
    moved = shutil.copytree(folder, tmp_path / "elsewhere")
    split = lambda r: {t.name: t.split for t in mixtures.index(r).tracks}  # noqa: E731
    assert split(folder) == split(moved)


def test_missing_folder(tmp_path):
    with pytest.raises(DatasetError, match="does not exist") as e:
        mixtures.index(tmp_path / "nope")
    assert str(tmp_path / "nope") in str(e.value) and "paths.mixtures" in str(e.value)


def test_folder_without_audio_says_what_was_looked_for(tmp_path):
    (tmp_path / "docs" / "sub").mkdir(parents=True)
    (tmp_path / "docs" / "sub" / "notes.txt").write_text("x")
    with pytest.raises(DatasetError) as e:
        mixtures.index(tmp_path / "docs")
    msg = str(e.value)
    assert "no audio files" in msg and str(tmp_path / "docs") in msg
    assert all(ext in msg for ext in (".wav", ".flac", ".mp3", ".m4a")) and "\n" not in msg


def test_every_unreadable_file_is_named_at_once_with_a_conversion_that_works(folder, tmp_path):
    root = shutil.copytree(folder, tmp_path / "damaged")
    bad = [root / "Album (2001)" / "broken.wav", root / "fake.flac"]
    for f in bad:
        f.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk")
    with pytest.raises(DatasetError) as e:
        mixtures.index(root)
    msg = str(e.value)
    assert "2 of" in msg and all(str(f.relative_to(root)) in msg for f in bad) and "\n" not in msg
    assert "unreadable=skip" in msg
    # into a new file: ffmpeg cannot write the file it reads
    assert "ffmpeg -i broken.wav broken.flac" in msg
    assert "ffmpeg -i broken.wav broken.flac" in mixtures.convert_hint(bad[0])
    assert "ffmpeg -i fake.flac fake-converted.flac" in mixtures.convert_hint(bad[1])


def test_unreadable_files_are_skipped_and_listed_on_request(folder, tmp_path):
    root = shutil.copytree(folder, tmp_path / "damaged")
    (root / "fake.flac").write_bytes(b"not audio at all")
    n = len(mixtures.index(folder).tracks)
    idx = build_index("mixtures", [str(root)], unreadable="skip")
    assert len(idx.tracks) == n and "fake.flac" not in {t.name for t in idx.tracks}
    assert any("1 unreadable file(s) left out" in note and "fake.flac" in note for note in idx.notes)
    with pytest.raises(DatasetError, match="unreadable='maybe'"):
        build_index("mixtures", [str(root)], unreadable="maybe")
    # the option of the pretraining config that reads a folder of mixtures, whatever its objective
    from transfersep.data.registry import index_from_cfg
    from transfersep.run.config import compose

    for objective in ("mixit", "bootstrap"):
        overrides = [f"objective={objective}", f"paths.mixtures={root}", "pretrain.dataset.unreadable=skip"]
        cfg = compose(["pretrain=mixtures", *overrides])
        assert len(index_from_cfg(cfg.pretrain.dataset).tracks) == n


def test_other_source_names_are_refused(folder):
    with pytest.raises(DatasetError, match=r"sources=\[mix\]"):
        mixtures.index(folder, ["bass", "drums"])


def test_inspect_command(folder, tmp_path, capsys):
    assert inspect_main(["mixtures", str(folder), "--summary"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["sources"] == ["mix"] and out["train"]["tracks"] + out["val"]["tracks"] == 3
    assert out["test"]["tracks"] == 0
    (tmp_path / "empty").mkdir()
    assert inspect_main(["mixtures", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(tmp_path / "empty") in err


# Slakh classes of the pretrain=slakh config -> the rendered stems of each tree track (datatrees.SLAKH_TRACKS)
SLAKH_MIXED = {
    "Track00001": ["S00", "S01", "S03", "S04"],  # Piano, Bass, Drums, Guitar; not Strings, not unrendered S07
    "Track00002": ["S00", "S02"],  # Bass, Drums; not Synth Pad or Sound effects
    "Track01501": ["S00", "S01", "S02"],
    "Track01876": ["S00", "S01", "S03"],
}


def below_6k(x: np.ndarray) -> np.ndarray:
    """``x`` without its content above 6 kHz, where soxr's and scipy's filters differ (test_data_cache)."""
    return np.fft.irfft(np.fft.rfft(x)[: 6000 * len(x) // 16000], len(x))


def test_unlabeled_slakh_is_the_sum_of_the_stems_pretrain_slakh_mixes(trees, tmp_path):
    classes = {"bass": ["Bass"], "drums": ["Drums"], "piano_guitar": ["Piano", "Guitar"]}
    idx = build_index("slakh", [str(trees["slakh"])], list(classes), classes=classes, unlabeled=True)
    assert idx.source_names == ["mix"]
    assert {t.name: t.split for t in idx.tracks} == {
        "Track00001": "train",
        "Track00002": "train",
        "Track01501": "val",
        "Track01876": "test",
    }
    cache = StemCache(tmp_path / "cache", [str(trees["slakh"])])
    for t in idx.tracks:
        assert list(t.sources) == ["mix"]
        names = sorted(Path(r.path).stem for r in t.sources["mix"])
        assert names == SLAKH_MIXED[t.name]
        arr = np.asarray(cache.array(t.sources["mix"], t.corpus), np.float64)
        ref = reference_16k([r.path for r in t.sources["mix"]])
        n = min(len(ref), len(arr))
        a, b = below_6k(arr[:n])[200:-200], below_6k(ref[:n])[200:-200]
        assert np.sqrt(np.mean((a - b) ** 2) / np.mean(b**2)) < 0.02, t.name
        # never the track's own mix.flac: the stems, as supervised pretraining mixes them
        assert all(Path(r.path).parent.name == "stems" for r in t.sources["mix"])


def test_unlabeled_keeps_an_unlabeled_index_as_it_is(folder):
    idx = mixtures.index(folder)
    assert mixtures.unlabeled(idx) is idx


def test_files_of_zero_frames_are_refused(tmp_path):
    root = tmp_path / "m"
    datatrees.write(root / "ok.wav", datatrees.noise("ok", 1.0, 16000), 16000)
    sf.write(str(root / "empty.wav"), np.zeros((0, 1), np.float32), 16000)
    with pytest.raises(DatasetError, match="empty.wav: holds no audio"):
        build_index("mixtures", [str(root)])
