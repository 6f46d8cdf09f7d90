"""Separation at the input's rate: whole-band outputs that add up to the input, the residual, the
API's dtypes, inputs too short to separate, MixIT models, source names and output folders."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from sep_fixtures import NAMES, TINY, music, train_tiny, tree, write_audio
from transfersep.cli import main
from transfersep.inference import separate as sep
from transfersep.model.export import export_model


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    d = tmp_path_factory.mktemp("model")
    return export_model(train_tiny(d / "run"), d / "model.safetensors")


@pytest.fixture(scope="module")
def mixit_package(tmp_path_factory):
    from transfersep.model.mixit import output_names
    from transfersep.model.system import SeparationSystem

    system = SeparationSystem(
        model=TINY, phase="pretrain", source_names=output_names(3), objective="mixit", mixit={"outputs": 3}
    )
    return export_model(system, tmp_path_factory.mktemp("mixit") / "mixit.safetensors")


def bright(n: int, sr: int, channels: int) -> np.ndarray:
    """Tones plus white noise: energy up to the input's Nyquist frequency, far above 8 kHz."""
    rng = np.random.default_rng(1)
    return (0.7 * music(n, sr, channels) + 0.05 * rng.standard_normal((n, channels))).astype(np.float32)


def band_energy(y: np.ndarray, sr: int, lo: float = 9_000.0, hi: float = 20_000.0) -> float:
    f = np.fft.rfftfreq(len(y), 1 / sr)
    return float((np.abs(np.fft.rfft(y, axis=0)[(f >= lo) & (f <= hi)]) ** 2).sum())


@pytest.mark.parametrize("sr, channels", [(44_100, 1), (48_000, 2)])
def test_files_are_whole_band_and_add_up_to_the_input(package, tmp_path, sr, channels):
    x = bright(sr * 3 + 5, sr, channels)
    src = write_audio(tmp_path / "song.wav", x, sr)
    outs = [sf.read(p, dtype="float32", always_2d=True)[0] for p in sep.separate_file(src, package, tmp_path / "o")]
    assert np.abs(sum(outs) - x).max() < 1e-4
    # the band the model never hears (above 8 kHz) is in the outputs as in the input
    assert all(band_energy(y, sr) > 1e-2 * band_energy(x, sr) for y in outs)


@pytest.mark.parametrize("sr", [44_100, 48_000])
def test_residual_is_what_no_source_took(package, tmp_path, sr, monkeypatch):
    monkeypatch.chdir(tmp_path)
    x = bright(sr * 2 + 3, sr, 2)
    src = write_audio(tmp_path / "take.wav", x, sr)
    assert main(["separate", str(src), "--model", str(package), "--residual", "--device", "cpu", "-q"]) == 0
    folder = tmp_path / "separated" / package.parent.name / "take"
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{n}.wav" for n in [*NAMES, "residual"])
    outs = [sf.read(folder / f"{n}.wav", dtype="float32", always_2d=True)[0] for n in [*NAMES, "residual"]]
    assert np.abs(sum(outs) - x).max() < 1e-4
    assert all(band_energy(y, sr) > 1e-2 * band_energy(x, sr) for y in outs[:-1])


@pytest.mark.parametrize("sr", [44_100, 48_000])
def test_api_outputs_add_up_and_keep_the_inputs_dtype_and_scale(package, sr):
    import transfersep

    model = transfersep.load_model(package, device="cpu", precision="fp32")
    x = bright(sr * 2 + 1, sr, 2)
    stems = model.separate(x, sr)
    assert np.abs(sum(stems.values()) - x).max() < 1e-4
    assert all(band_energy(y, sr) > 1e-2 * band_energy(x, sr) for y in stems.values())
    with_rest = model.separate(x.T, sr, residual=True)  # [channels, samples]
    assert list(with_rest) == [*NAMES, "residual"]
    assert np.abs(sum(with_rest.values()) - x.T).max() < 1e-4
    pcm = np.round(x * 16_000).astype(np.int16)
    ints = model.separate(pcm, sr)
    assert all(y.dtype == np.int16 and y.shape == pcm.shape for y in ints.values())
    floats = model.separate(pcm.astype(np.float32) / 32_768, sr)
    for name, y in ints.items():  # int16 scale: the float result times 32768, rounded
        assert np.abs(y.astype(np.float64) - floats[name] * 32_768).max() <= 1.0
    total = sum(y.astype(np.int64) for y in ints.values())
    assert np.abs(total - pcm).max() <= len(NAMES)  # one rounding per source
    wide = model.separate(torch.from_numpy(x.T.astype(np.float64)), sr)
    assert all(t.dtype == torch.float64 for t in wide.values())


def test_too_short_inputs_get_one_line_and_the_rest_still_runs(package, tmp_path, capsys):
    import transfersep

    model = transfersep.load_model(package, device="cpu", precision="fp32")
    with pytest.raises(ValueError, match=r"at least 1412 samples at 44100 Hz"):
        model.separate(np.zeros(100, np.float32), 44_100)
    tiny = write_audio(tmp_path / "blip.wav", music(441, 44_100), 44_100)  # 10 ms
    good = write_audio(tmp_path / "later.wav", music(44_100, 44_100), 44_100)
    out = tmp_path / "out"
    assert main(["separate", str(tiny), str(good), "--model", str(package), "--out", str(out), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "blip.wav" in err[0] and "10.0 ms" in err[0] and "Traceback" not in err[0]
    assert sorted(p.name for p in (out / package.parent.name / "later").iterdir()) == [f"{n}.wav" for n in NAMES]
    assert not (out / package.parent.name / "blip").exists()


def test_stems_match_ignoring_case(package, tmp_path):
    src = write_audio(tmp_path / "s.wav", music(16_000, 16_000), 16_000)
    paths = sep.separate_file(src, package, tmp_path / "o", sources=["Keys", "BASS"])
    assert [p.name for p in paths] == ["keys.wav", "bass.wav"]


def test_two_packages_named_alike_never_share_a_folder(package, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    a, b = tmp_path / "a" / "bach10", tmp_path / "b" / "bach10"
    for d in (a, b):
        d.mkdir(parents=True)
        shutil.copy(package, d / "model.safetensors")
    src = write_audio(tmp_path / "song.wav", music(16_000, 16_000), 16_000)
    args = ["--device", "cpu", "-q"]
    assert main(["separate", str(src), "--model", str(a / "model.safetensors"), *args]) == 0
    before = tree(tmp_path / "separated")
    assert main(["separate", str(src), "--model", str(b / "model.safetensors"), *args]) == 2
    err = capsys.readouterr().err
    assert "holds the outputs of another model" in err and "--out" in err
    assert tree(tmp_path / "separated") == before
    # the same model again (its folder, or the file itself) updates its own outputs
    assert main(["separate", str(src), "--model", str(a), *args]) == 0


def test_a_mixit_model_separates_into_its_unnamed_outputs(mixit_package, tmp_path, capsys):
    src = write_audio(tmp_path / "song.wav", bright(44_100 * 2, 44_100, 1), 44_100)
    out = tmp_path / "out"
    assert main(["separate", str(src), "--model", str(mixit_package), "--out", str(out), "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert "carry no names" in err and "never trained" not in err
    names = ["output1", "output2", "output3"]
    assert sorted(p.name for p in (out / "mixit" / "song").iterdir()) == [f"{n}.wav" for n in names]
    # its embedding head was never trained: --clusters is refused with that reason, nothing written
    assert (
        main(["separate", str(src), "--model", str(mixit_package), "--out", str(tmp_path / "c"), "--clusters", "2"])
        == 2
    )
    line = capsys.readouterr().err.strip()
    assert "embedding head was never trained" in line and "objective mixit" in line
    assert not (tmp_path / "c").exists()
