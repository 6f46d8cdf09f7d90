"""Separation of audio files: layout, rates, lengths, channels, chunking, streaming, failures."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch

from sep_fixtures import NAMES, constant_mask, music, ones_mask, train_tiny, tree, write_audio
from transfersep.audio import AudioReadError
from transfersep.bench.separation import bench_separation
from transfersep.cli import main
from transfersep.inference import separate as sep
from transfersep.inference.chunking import separate_stream
from transfersep.model.export import export_model
from transfersep.model.loading import load_model
from transfersep.model.package import ModelLoadError


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    d = tmp_path_factory.mktemp("model")
    return export_model(train_tiny(d / "run"), d / "model.safetensors")


def read(path):
    x, sr = sf.read(path, dtype="float32", always_2d=True)
    return x, sr


@pytest.mark.parametrize(
    "sr, channels, n, fmt, ext",
    [
        (44_100, 1, 44_100 * 5 + 7, "wav", ".wav"),  # 44.1 kHz in -> 44.1 kHz out, odd length
        (48_000, 2, 48_000 * 3 + 1, "flac", ".flac"),  # stereo FLAC in -> stereo FLAC out
        (16_000, 1, 16_000 * 2 + 3, "wav", ".wav"),  # the model's own rate: no resampling
        (22_050, 2, 1_234, "wav", ".wav"),  # shorter than one chunk
    ],
)
def test_one_file_per_source_at_input_rate_length_and_channels(package, tmp_path, sr, channels, n, fmt, ext):
    src = write_audio(tmp_path / f"My Song{ext}", 0.5 * music(n, sr, channels), sr, "PCM_16")
    out = sep.separate_file(
        src, package, tmp_path / "out", fmt=fmt, device="cpu", chunk_seconds=1.0, overlap_seconds=0.25
    )
    assert out == [tmp_path / "out" / "My Song" / f"{name}.{fmt}" for name in NAMES]
    assert tree(tmp_path / "out") == ["My Song"] + [f"My Song/{name}.{fmt}" for name in NAMES]
    for p in out:
        info = sf.info(p)
        assert (info.samplerate, info.channels, info.frames) == (sr, channels, n)
        assert info.format == fmt.upper()


@pytest.mark.parametrize(
    "sr, channels, chunk, overlap, threads",
    [
        (16_000, 1, 1.0, 0.25, 1),
        (16_000, 2, 2.0, 0.5, 3),
        (44_100, 2, 1.0, 0.5, 2),
        (44_100, 1, 3.0, 0.0, 1),
    ],
)
def test_all_ones_mask_returns_the_input_in_every_source(package, tmp_path, sr, channels, chunk, overlap, threads):
    """Exact reference: masks of 1 make every source the mixture itself (for a 44.1 kHz input, the
    mixture after a one-shot soxr round trip to 16 kHz and back), so any chunking, crossfade,
    channel or alignment mistake shows. Tolerance 1e-5 (float32 STFT/iSTFT round trip)."""
    lm = load_model(package)
    ones_mask(lm.net)
    x = music(sr * 7 + 13, sr, channels)
    src = write_audio(tmp_path / "mix.wav", x, sr)
    ref = x if sr == 16_000 else soxr.resample(soxr.resample(x, sr, 16_000, "HQ"), 16_000, sr, "HQ")[: len(x)]
    for p in sep.separate_file(
        src, lm, tmp_path / "out", chunk_seconds=chunk, overlap_seconds=overlap, batch_size=5, threads=threads, raw=True
    ):
        y, _ = read(p)
        np.testing.assert_allclose(y, ref, atol=1e-5, rtol=0)


def test_chunked_equals_whole_file_pass(package, tmp_path):
    """A model without temporal context (fixed per-bin masks): chunks on the STFT frame grid,
    crossfaded, must match one pass over the whole file up to the STFT edge effects that the
    crossfade attenuates: max error < 1e-3 at a peak of about 0.5, SNR > 60 dB."""
    lm = load_model(package)
    constant_mask(lm.net)
    x = music(16_000 * 9 + 5, 16_000)
    whole = lm.separate(torch.from_numpy(x[:, 0])[None])[0].numpy()  # [C, N]
    src = write_audio(tmp_path / "mix.wav", x, 16_000)
    for chunk, overlap in ((1.0, 0.25), (2.0, 0.5), (3.0, 1.0)):
        outs = sep.separate_file(
            src, lm, tmp_path / f"o{chunk}", chunk_seconds=chunk, overlap_seconds=overlap, batch_size=2, raw=True
        )
        y = np.stack([read(p)[0][:, 0] for p in outs])
        err = y - whole
        assert np.abs(err).max() < 1e-3
        assert (10 * np.log10((whole**2).sum(-1) / (err**2).sum(-1))).min() > 60


def test_trained_model_chunked_close_to_whole_file(package, tmp_path):
    """With a trained (context-dependent) model chunks differ from one pass only through the context
    each chunk sees; a tiny model trained a few steps stays above 40 dB SNR."""
    lm = load_model(package)
    x = music(16_000 * 8, 16_000)
    whole = lm.separate(torch.from_numpy(x[:, 0])[None])[0].numpy()
    outs = sep.separate_file(
        write_audio(tmp_path / "m.wav", x, 16_000), lm, tmp_path / "o", chunk_seconds=2.0, raw=True
    )
    y = np.stack([read(p)[0][:, 0] for p in outs])
    assert (10 * np.log10((whole**2).sum(-1) / ((y - whole) ** 2).sum(-1))).min() > 40


def test_int8_precision_stays_close_to_fp32(package, tmp_path):
    x = music(16_000 * 4, 44_100, 2)
    src = write_audio(tmp_path / "m.wav", x, 44_100)
    fp32 = [read(p)[0] for p in sep.separate_file(src, package, tmp_path / "a", device="cpu", precision="fp32")]
    int8 = [read(p)[0] for p in sep.separate_file(src, package, tmp_path / "b", device="cpu", precision="int8")]
    for a, b in zip(fp32, int8):
        assert 10 * np.log10((a**2).sum() / ((a - b) ** 2).sum()) > 40


def test_auto_precision_takes_int8_on_cpu_only_when_it_agrees_with_fp32(package, monkeypatch):
    from transfersep.inference import runner as inference

    lm = inference.prepare_model(package, "cpu", "auto")
    assert lm.meta["inference_precision"] == "int8" and lm.meta["int8_agreement_db"] > 40
    monkeypatch.setattr(inference, "INT8_MIN_AGREEMENT_DB", 1000.0)  # no int8 model can pass this
    with pytest.warns(UserWarning, match="separating in fp32"):
        lm = inference.prepare_model(package, "cpu", "auto")
    assert "inference_precision" not in lm.meta and isinstance(lm.net.blstm, torch.nn.LSTM)
    assert inference.prepare_model(package, "cpu", "fp32").meta.get("inference_precision") is None
    with pytest.raises(ValueError, match="CPU only"):
        inference.prepare_model(package, "cuda" if torch.cuda.is_available() else "meta", "int8")


def test_stream_emits_while_reading_with_bounded_lag():
    """Bounded memory: output comes out while input is still being read, never more than about
    (batch + 1) chunks + one block behind, and every sample exactly once."""
    chunk, overlap, batch, block = 2048, 512, 3, 1000
    n = 200_000
    x = np.random.default_rng(0).standard_normal((n, 1)).astype(np.float32)
    state = {"read": 0, "emitted": 0, "lag": 0}

    def read_block():
        if state["read"] >= n:
            return None
        b = x[state["read"] : state["read"] + block]
        state["read"] += len(b)
        return b

    out = []

    def emit(y):
        out.append(y)
        state["emitted"] += len(y)
        state["lag"] = max(state["lag"], state["read"] - state["emitted"])

    total = separate_stream(read_block, lambda m: m[:, None, :] * 2.0, 1, 1, emit, chunk, overlap, batch, 128)
    assert total == n and state["emitted"] == n
    assert state["lag"] <= (batch + 1) * chunk + block
    np.testing.assert_allclose(np.concatenate(out)[:, 0], 2.0 * x[:, 0], atol=1e-5)


def test_progress_bar_on_long_inputs(package, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sep, "LONG_INPUT_SECONDS", 2.0)
    src = write_audio(tmp_path / "long.wav", music(16_000 * 3, 16_000), 16_000)
    sep.separate_file(src, package, tmp_path / "o", device="cpu")
    assert "s audio" in capsys.readouterr().err
    sep.separate_file(src, package, tmp_path / "o2", device="cpu", progress=False)
    assert "s audio" not in capsys.readouterr().err


# -- failures write nothing ----------------------------------------------------------------------
def test_unreadable_input_writes_nothing(package, tmp_path):
    bad = tmp_path / "in" / "broken.wav"
    bad.parent.mkdir()
    bad.write_bytes(b"RIFF" + bytes(range(256)) * 4)
    with pytest.raises(AudioReadError, match="broken.wav"):
        sep.separate_file(bad, package, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_input_corrupt_midway_writes_nothing(package, tmp_path):
    good = write_audio(tmp_path / "song.flac", music(44_100 * 6, 44_100), 44_100)
    cut = tmp_path / "cut.flac"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])  # header intact, stream cut
    out = tmp_path / "out"
    (out / "earlier").mkdir(parents=True)  # someone's earlier results stay as they were
    with pytest.raises(AudioReadError, match="cut.flac"):
        sep.separate_file(cut, package, out, chunk_seconds=1.0)
    assert tree(out) == ["earlier"]


def test_corrupt_model_writes_nothing(package, tmp_path):
    bad = tmp_path / "model.safetensors"
    data = bytearray(package.read_bytes())
    data[-50] ^= 0x55
    bad.write_bytes(bytes(data))
    src = write_audio(tmp_path / "song.wav", music(16_000, 16_000), 16_000)
    with pytest.raises(ModelLoadError, match="checksum"):
        sep.separate_file(src, bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_pretraining_model_is_refused_for_separation(tmp_path):
    from sep_fixtures import TINY
    from transfersep.model.system import SeparationSystem

    pre = export_model(SeparationSystem(model=TINY, phase="pretrain", source_names=NAMES), tmp_path / "pre.safetensors")
    src = write_audio(tmp_path / "song.wav", music(16_000, 16_000), 16_000)
    with pytest.raises(ValueError, match="mask head was never trained.*--clusters K"):
        sep.separate_file(src, pre, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    # its deep-clustering head is all --clusters needs
    paths = sep.separate_file(src, pre, tmp_path / "out", clusters=2)
    assert [q.name for q in paths] == ["cluster_1.wav", "cluster_2.wav"]


def test_cli_separates_several_inputs_and_refuses_bad_ones_up_front(package, tmp_path, capsys):
    a = write_audio(tmp_path / "a.wav", music(20_000, 44_100, 2), 44_100)
    b = write_audio(tmp_path / "b.flac", music(9_000, 16_000), 16_000)
    out = tmp_path / "out"
    args = ["--model", str(package), "--out", str(out), "--device", "cpu", "-q"]
    assert main(["separate", str(a), str(b), *args, "--format", "flac"]) == 0
    model = package.parent.name  # model.safetensors outside a run directory is named by its folder
    assert tree(out) == sorted(
        [model, f"{model}/.transfersep-model.json"]
        + [f"{model}/{s}" for s in "ab"]
        + [f"{model}/{s}/{n}.flac" for s in "ab" for n in NAMES]
    )
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    out2 = tmp_path / "out2"
    assert main(["separate", str(a), str(bad), *args[:2], "--out", str(out2), "-q"]) == 2
    assert "bad.wav" in capsys.readouterr().err
    assert not out2.exists()  # a.wav was not separated either: inputs are checked first
    a2 = write_audio(tmp_path / "a.flac", music(9_000, 16_000), 16_000)
    assert main(["separate", str(a), str(a2), *args]) == 2  # both would write out/<model>/a/
    assert "rename one" in capsys.readouterr().err


def test_bench_reports_real_time_factors():
    r = bench_separation("tiny", seconds=2.0, repeats=2, chunk_seconds=1.0, threads=1)
    assert r["rtf_min"] <= r["rtf_median"] <= r["rtf_max"] and r["rtf_min"] > 0
    assert len(r["wall_s"]) == 2 and r["audio_seconds"] == 2.0 and r["model"] == "tiny"
