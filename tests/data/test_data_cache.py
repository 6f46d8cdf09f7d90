"""The 16 kHz cache: content against an independent reference, bad files, nothing written in roots."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import datatrees
from oracles import best_match, reference_16k
from transfersep.audio import AudioReadError
from transfersep.data import slakh, stems
from transfersep.data.cache import StemCache


def snapshot(root: Path) -> dict:
    """Every file and folder under root with its size and modification time."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.stat()
            out[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return out


def test_cache_is_16k_mono_sum_of_the_files(trees, tmp_path):
    # Remixpacks songs are 48 kHz or 44.1 kHz stereo: resampled and downmixed
    idx = stems.index(trees["remixpacks"], ["snare", "kick_drum", "cymbals"], name="remixpacks", missing_sources="skip")
    song = next(t for t in idx.tracks if t.name == "Artist B - Track Two")
    refs = song.sources["cymbals"]  # Crash + Ride, summed
    assert refs[0].sample_rate == 48000 and refs[0].channels == 2
    cache = StemCache(tmp_path / "cache")
    arr = cache.array(refs, "remixpacks")
    assert arr.dtype == np.float32 and arr.ndim == 1
    assert len(arr) == pytest.approx(3 * 16000, abs=2)
    ref = reference_16k([r.path for r in refs])
    # identical below 6 kHz; the two resamplers' filters (soxr vs scipy polyphase) differ only in
    # their transition bands near 8 kHz, where white noise has as much energy as anywhere
    n = min(len(ref), len(arr))
    low = lambda x: np.fft.irfft(np.fft.rfft(x[:n])[: 6000 * n // 16000], n)  # noqa: E731
    a, b = low(np.asarray(arr, np.float64))[200:-200], low(ref)[200:-200]
    assert np.sqrt(np.mean((a - b) ** 2) / np.mean(b**2)) < 0.02
    assert isinstance(arr, np.memmap)  # read by memory map, not loaded whole
    path = cache.path_for(refs, "remixpacks")
    assert path.parent == tmp_path / "cache" / "remixpacks" and path.suffix == ".npy"


def test_read_window_and_padding(trees, tmp_path):
    idx = slakh.index(trees["babyslakh"])
    refs = idx.tracks[0].sources["drums"]
    cache = StemCache(tmp_path / "cache")
    whole = reference_16k([refs[0].path])  # babyslakh is already 16 kHz: no resampling at all
    np.testing.assert_allclose(cache.read(refs, 1000, 500, "slakh"), whole[1000:1500], atol=1e-6)
    tail = cache.read(refs, len(whole) - 100, 300, "slakh")
    np.testing.assert_allclose(tail[:100], whole[-100:], atol=1e-6)
    assert not tail[100:].any()
    head = cache.read(refs, -50, 100, "slakh")
    assert not head[:50].any() and np.allclose(head[50:], whole[:50], atol=1e-6)
    assert not cache.read([], 0, 10, "slakh").any()


def test_made_once_and_renewed_when_the_file_changes(tmp_path):
    f = datatrees.write(tmp_path / "data" / "s" / "kick.wav", datatrees.noise("a", 1.0, 44100), 44100)
    idx = stems.index(tmp_path / "data", ["kick"], {"kick": ["kick"]})
    refs = idx.tracks[0].sources["kick"]
    cache = StemCache(tmp_path / "cache")
    p1 = cache.ensure(refs, "x")
    m1 = p1.stat().st_mtime_ns
    assert cache.ensure(refs, "x") == p1 and p1.stat().st_mtime_ns == m1  # not remade
    before = f.stat()
    datatrees.write(f, datatrees.noise("b", 1.0, 44100), 44100)  # same length: same size
    # a distinct modification time whatever the file system's clock resolution
    os.utime(f, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))
    p2 = StemCache(tmp_path / "cache").ensure(refs, "x")
    assert p2 != p1
    new = np.load(p2)
    _, corr = best_match(new[1000:5000], reference_16k([str(f)]))
    assert corr > 0.98


def test_truncated_flac_names_the_file(trees, tmp_path):
    root = shutil.copytree(trees["slakh"], tmp_path / "s")
    victim = root / "train" / "Track00002" / "stems" / "S00.flac"
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    idx = slakh.index(root)  # the header still reads
    refs = next(t for t in idx.tracks if t.name == "Track00002").sources["bass"]
    with pytest.raises(AudioReadError, match="S00.flac") as e:
        StemCache(tmp_path / "cache").ensure(refs, "slakh")
    assert "truncated" in str(e.value) or "corrupt" in str(e.value)
    assert not list((tmp_path / "cache").rglob("*.npy"))  # no half-written entry


def test_cache_inside_a_dataset_root_is_refused(trees):
    with pytest.raises(ValueError, match="inside the dataset folder"):
        StemCache(trees["bach10"] / "cache", [str(trees["bach10"])])


def test_nothing_is_written_in_the_dataset_root(trees, tmp_path):
    from transfersep.data.mixing import ExcerptSet
    from transfersep.data.registry import build_index, precache

    root = shutil.copytree(trees["dagstuhl"], tmp_path / "DagstuhlChoirSet_V1.2.3")
    before = snapshot(root)
    idx = build_index("dagstuhl", [str(root)])
    cache = StemCache(tmp_path / "cache", [str(root)])
    precache(idx.tracks, cache)
    ds = ExcerptSet(idx.split("train"), idx.source_names, cache, 1.0, "coherent", 0, "train", 5)
    for i in range(5):
        ds[i]
    assert snapshot(root) == before
    assert len(list((tmp_path / "cache").rglob("*.npy"))) == 2 * len(idx.tracks)


def test_stem_mp4_stream_decodes_to_its_stem(trees, tmp_path):
    from transfersep.data import musdb

    idx = musdb.index(trees["musdb_mp4"])  # skipped without ffmpeg
    song = next(t for t in idx.tracks if t.name == "PR - Oh No")
    arr = StemCache(tmp_path / "cache").array(song.sources["vocals"], "musdb")
    ref = reference_16k([str(trees["musdb"] / "test" / "PR - Oh No" / "vocals.wav")])
    # AAC is lossy and may shift by its priming delay; the stream is still this stem
    lag, corr = best_match(np.asarray(arr[8000:24000], np.float64), ref)
    assert corr > 0.9 and abs(lag - 8000) < 2000
