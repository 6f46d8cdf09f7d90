"""`transfersep separate` as people know it from demucs/umx, its bad inputs, and the Python API."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from sep_fixtures import NAMES, music, train_tiny, tree, write_audio
from transfersep.cli import main
from transfersep.model.export import export_model


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A finished run directory (final.ckpt, status.json, model.safetensors) named as a grid point."""
    d = tmp_path_factory.mktemp("runs") / "slakh-none-whole-stems"
    export_model(train_tiny(d), d / "model.safetensors")
    return d


@pytest.fixture()
def song(tmp_path):
    return write_audio(tmp_path / "My Song.wav", music(44_100 * 2 + 11, 44_100, 2), 44_100)


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("transfersep separate: error: ")
    return err[0]


def test_default_output_is_separated_model_track_stem(run_dir, song, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["separate", str(song), "--model", str(run_dir), "--device", "cpu", "-q"]) == 0
    out = tmp_path / "separated" / "slakh-none-whole-stems" / "My Song"
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{n}.wav" for n in NAMES)
    x, sr = sf.read(out / "bass.wav", always_2d=True)
    assert sr == 44_100 and x.shape == (44_100 * 2 + 11, 2)
    # a package file outside a run directory is named by its file name; --out moves the root
    pkg = shutil.copy(run_dir / "model.safetensors", tmp_path / "my-model.safetensors")
    assert (
        main(
            [
                "separate",
                str(song),
                "--model",
                str(pkg),
                "--out",
                "elsewhere",
                "--stems",
                "keys,bass",
                "--device",
                "cpu",
                "-q",
            ]
        )
        == 0
    )
    assert tree(tmp_path / "elsewhere") == [
        "my-model",
        "my-model/.transfersep-model.json",  # which model writes there: another one is refused
        "my-model/My Song",
        "my-model/My Song/bass.wav",
        "my-model/My Song/keys.wav",
    ]


@pytest.mark.parametrize("case", ["folder", "m4a", "empty", "out_is_file", "unknown_stem", "missing"])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case, run_dir, song, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["--model", str(run_dir), "--device", "cpu", "-q"]
    before = tree(tmp_path)
    if case == "folder":
        (tmp_path / "album").mkdir()
        before = tree(tmp_path)
        argv, expect = ["album"], "album is a folder; give audio files"
    elif case == "m4a":
        (tmp_path / "song.m4a").write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(200))
        before = tree(tmp_path)
        argv, expect = ["song.m4a"], "libsndfile reads WAV, FLAC, OGG (Vorbis/Opus), MP3"
    elif case == "empty":
        write_audio(tmp_path / "silence.wav", np.zeros((0, 1), np.float32), 44_100)
        before = tree(tmp_path)
        argv, expect = ["silence.wav"], "silence.wav: holds no audio (0 frames)"
    elif case == "out_is_file":
        (tmp_path / "taken").write_text("someone's notes")
        before = tree(tmp_path)
        argv, expect = [str(song), "--out", "taken"], "--out taken is a file; give a folder"
    elif case == "unknown_stem":
        argv, expect = (
            [str(song), "--stems", "bass,vocals"],
            "the model has no source vocals; it separates bass,drums,keys",
        )
    else:
        argv, expect = ["nope.wav"], "nope.wav: no such file"
    assert main(["separate", *argv, *args]) == 2
    assert expect in one_error_line(capsys)
    assert tree(tmp_path) == before  # nothing written, not even separated/
    if case == "out_is_file":
        assert (tmp_path / "taken").read_text() == "someone's notes"


def test_python_api_matches_the_command_at_44k_stereo(run_dir, song, tmp_path):
    import transfersep

    assert (
        main(
            [
                "separate",
                str(song),
                "--model",
                str(run_dir),
                "--out",
                str(tmp_path / "cmd"),
                "--device",
                "cpu",
                "--precision",
                "fp32",
                "-q",
            ]
        )
        == 0
    )
    model = transfersep.load_model(run_dir, device="cpu", precision="fp32")
    assert model.name == "slakh-none-whole-stems" and model.source_names == NAMES
    x, sr = sf.read(song, dtype="float32", always_2d=True)  # [samples, channels]
    stems = model.separate(x.T, sr)
    assert list(stems) == NAMES
    for name, est in stems.items():
        ref, ref_sr = sf.read(
            tmp_path / "cmd" / "slakh-none-whole-stems" / "My Song" / f"{name}.wav", dtype="float32", always_2d=True
        )
        assert ref_sr == sr and est.shape == x.T.shape == ref.T.shape
        np.testing.assert_array_equal(est, ref.T)  # float32 WAV holds the command's values exactly
    # the sources are a decomposition of the input, not silence or a copy of it
    total = sum(stems.values())
    assert 0.1 < np.abs(stems["bass"]).max() and not np.allclose(stems["bass"], x.T, atol=1e-3)
    assert np.corrcoef(total.ravel(), x.T.ravel())[0, 1] > 0.5


def test_python_api_keeps_shape_and_type(run_dir):
    import transfersep

    model = transfersep.load_model(run_dir / "model.safetensors", device="cpu", precision="fp32")
    mono = music(22_050, 22_050)[:, 0]
    out = model.separate(mono, 22_050, sources=["drums"])
    assert list(out) == ["drums"] and out["drums"].shape == mono.shape and out["drums"].dtype == np.float32
    t = torch.from_numpy(music(8_000, 8_000, 3).T.copy())  # three channels at 8 kHz, a tensor
    tout = model.separate(t, 8_000)
    assert all(isinstance(v, torch.Tensor) and v.shape == t.shape for v in tout.values())
    # each channel is separated on its own: channel 1 alone gives channel 1 of the three-channel result
    alone = model.separate(t[1].numpy(), 8_000)
    np.testing.assert_allclose(alone["keys"], tout["keys"][1].numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="holds no samples"):
        model.separate(np.zeros(0, np.float32), 44_100)


def test_help_lists_every_verb_with_an_example(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    listing = capsys.readouterr().out
    for verb in ("train", "probe", "study", "status", "report", "data", "separate", "export"):
        assert f"    {verb}" in listing
        assert main([verb, "-h"]) == 0  # every verb is called one way: its exit code is returned
        text = capsys.readouterr().out
        assert f"example:\n  transfersep {verb} " in text, verb


def test_console_script_is_installed():
    exe = Path(sys.executable).parent / "transfersep"
    if not exe.exists():
        pytest.skip(f"no console script beside {sys.executable} (run with the project's .venv)")
    p = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "separate" in p.stdout and "train" in p.stdout


@pytest.mark.parametrize("fmt, ext", [("MP3", ".mp3"), ("OGG", ".ogg")])
def test_compressed_inputs(fmt, ext, run_dir, tmp_path):
    if fmt not in sf.available_formats():
        pytest.skip(f"this libsndfile has no {fmt}")
    src = tmp_path / f"take{ext}"
    sf.write(src, music(44_100 * 2, 44_100, 2), 44_100, format=fmt)
    assert (
        main(["separate", str(src), "--model", str(run_dir), "--out", str(tmp_path / "o"), "--device", "cpu", "-q"])
        == 0
    )
    info = sf.info(src)
    for name in NAMES:
        out = sf.info(tmp_path / "o" / run_dir.name / "take" / f"{name}.wav")
        assert (out.samplerate, out.channels, out.frames) == (44_100, 2, info.frames)


def test_clusters_partition_the_recording(run_dir, tmp_path, monkeypatch):
    """--clusters K: K files at the input's rate, channels and length whose sum is the input (binary
    masks partition every bin the model hears; the band above it is shared out as for sources)."""
    monkeypatch.chdir(tmp_path)
    x = music(44_100 * 9 + 7, 44_100, 2, seed=3)  # three 4-s chunks: the clusters must agree across them
    song = write_audio(tmp_path / "long.wav", x, 44_100)
    assert main(["separate", str(song), "--model", str(run_dir), "--clusters", "2", "--device", "cpu", "-q"]) == 0
    out = tmp_path / "separated" / "slakh-none-whole-stems" / "long"
    assert sorted(p.name for p in out.iterdir()) == ["cluster_1.wav", "cluster_2.wav"]
    parts = [sf.read(out / f"cluster_{k}.wav", always_2d=True) for k in (1, 2)]
    assert all(sr == 44_100 and y.shape == x.shape for y, sr in parts)
    total = parts[0][0] + parts[1][0]
    assert np.abs(total - x).max() < 1e-4
    assert min(np.sum(y**2) for y, _ in parts) > 1e-3 * np.sum(x**2)  # both clusters hold sound


def test_clusters_need_two(run_dir, song, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["separate", str(song), "--model", str(run_dir), "--clusters", "1", "-q"]) == 2
    assert "--clusters 1: give 2 or more" in capsys.readouterr().err and not (tmp_path / "separated").exists()


@pytest.fixture(scope="module")
def pretrain_run(tmp_path_factory):
    """A finished pretraining run of study "s" (deep-clustering loss only: an untrained mask head)."""
    gp = {"stage": "pretrain", "pretrain": "slakh", "augment": "none", "finetune": "none", "downstream": "none"}
    d = tmp_path_factory.mktemp("runs") / "s" / "pretrain" / "slakh-none"
    system = train_tiny(d, phase="pretrain", status={"state": "finished", "grid_point": gp, "study": "s"})
    export_model(system, d / "model.safetensors")
    return d


@pytest.mark.parametrize("given", ["package", "run_dir", "checkpoint"])
def test_clusters_work_with_a_pretraining_model(pretrain_run, given, tmp_path, monkeypatch, capsys):
    """--clusters K needs only the deep-clustering head, which pretraining trains: the K files sum
    to the input (16 kHz: no resampling; binary masks partition every bin)."""
    monkeypatch.chdir(tmp_path)
    model = {"package": pretrain_run / "model.safetensors", "run_dir": pretrain_run}.get(given)
    model = model or pretrain_run / "final.ckpt"
    x = music(16_000 * 5 + 3, 16_000, 1, seed=4)
    song = write_audio(tmp_path / "take.wav", x, 16_000)
    assert main(["separate", str(song), "--model", str(model), "--clusters", "2", "--device", "cpu", "-q"]) == 0
    out = tmp_path / "separated" / "s-pretrain-slakh-none" / "take"
    parts = [sf.read(out / f"cluster_{k}.wav", always_2d=True)[0] for k in (1, 2)]
    total = parts[0] + parts[1]
    assert total.shape == x.shape
    assert 10 * np.log10(np.sum(x**2) / np.sum((total - x) ** 2)) > 40
    # without --clusters: one line saying what works, nothing written
    before = tree(tmp_path)
    assert main(["separate", str(song), "--model", str(model), "--device", "cpu", "-q"]) == 2
    line = one_error_line(capsys)
    assert "mask head was never trained" in line and "--clusters K" in line
    assert tree(tmp_path) == before


def test_model_names_are_unique_per_study_and_grid_point(tmp_path):
    from transfersep.inference.api import model_name

    for study in ("paper", "tiny"):
        for sub in ("baseline/bach10", "finetune/slakh-none-whole-bach10"):
            d = tmp_path / "runs" / study / sub
            (d / "checkpoints").mkdir(parents=True)
            stage = sub.split("/")[0]  # a run's status.json records its stage (the folder above it)
            gp = {"stage": stage}
            (d / "status.json").write_text(json.dumps({"state": "finished", "study": study, "grid_point": gp}))
    runs = tmp_path / "runs"
    assert model_name(runs / "paper" / "baseline" / "bach10") == "paper-baseline-bach10"
    assert model_name(runs / "tiny" / "baseline" / "bach10" / "model.safetensors") == "tiny-baseline-bach10"
    ft = runs / "tiny" / "finetune" / "slakh-none-whole-bach10"
    assert model_name(ft / "final.ckpt") == "tiny-finetune-slakh-none-whole-bach10"
    assert model_name(ft / "checkpoints" / "last.ckpt") == "tiny-finetune-slakh-none-whole-bach10"
    # a study folder renamed since: the study the run recorded names it
    (runs / "tiny").rename(runs / "tiny-copy")
    assert model_name(runs / "tiny-copy" / "baseline" / "bach10") == "tiny-baseline-bach10"
    # a package elsewhere is its file stem, whatever folder it lies in; model.safetensors its folder
    assert model_name(tmp_path / "downloads" / "bach10.safetensors") == "bach10"
    assert model_name(tmp_path / "downloads" / "model.safetensors") == "downloads"


def test_python_api_takes_soundfiles_samples_first_layout(run_dir, song, tmp_path):
    """``sf.read`` gives [samples, channels]: separated as the command does, returned in that layout."""
    import transfersep

    assert main(["separate", str(song), "--model", str(run_dir), "--out", str(tmp_path / "cmd"), "-q"]) == 0
    model = transfersep.load_model(run_dir, device="cpu")  # precision auto, as the command
    x, sr = sf.read(song, dtype="float32", always_2d=True)
    assert x.shape == (44_100 * 2 + 11, 2)
    stems = model.separate(x, sr)
    for name, est in stems.items():
        ref, _ = sf.read(tmp_path / "cmd" / model.name / "My Song" / f"{name}.wav", dtype="float32", always_2d=True)
        assert est.shape == x.shape
        np.testing.assert_array_equal(est, ref)
    # a tensor in the same layout, and one channel as [samples, 1]
    t = model.separate(torch.from_numpy(x), sr)
    assert all(isinstance(v, torch.Tensor) and v.shape == x.shape for v in t.values())
    one = model.separate(x[:, :1], sr)
    assert one["bass"].shape == (len(x), 1)
    np.testing.assert_allclose(one["bass"][:, 0], model.separate(x[:, 0], sr)["bass"], atol=1e-6)
    with pytest.raises(ValueError, match=r"waveform of shape \(4, 4\): as many channels as samples"):
        model.separate(np.zeros((4, 4), np.float32), sr)


def test_an_unknown_verb_gets_a_suggestion_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["seperate", "song.wav", "--model", "m"]) == 2
    cap = capsys.readouterr()
    assert cap.out == "" and cap.err.splitlines() == [
        "transfersep: error: unknown verb 'seperate'; did you mean 'separate'? (`transfersep -h` explains them)"
    ]
    assert main(["frobnicate"]) == 2
    assert "unknown verb 'frobnicate'; the verbs are train, study, status" in capsys.readouterr().err
    assert tree(tmp_path) == []


def test_an_unknown_option_prints_the_verbs_usage(run_dir, song, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = tree(tmp_path)
    assert main(["separate", str(song), "--model", str(run_dir), "--bogus"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: transfersep separate ") and "--clusters K" in err
    assert err.strip().splitlines()[-1] == "transfersep separate: error: unrecognized arguments: --bogus"
    assert tree(tmp_path) == before


def test_a_warning_is_one_line_of_the_command(run_dir, song, tmp_path, capsys, monkeypatch):
    """int8 that disagrees with fp32 falls back to fp32 and says so in one line, without Python's
    'file:line: UserWarning' and source line; the sources are still written."""
    from transfersep.inference import runner

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runner, "INT8_MIN_AGREEMENT_DB", 1_000.0)  # no int8 model agrees that well
    assert main(["separate", str(song), "--model", str(run_dir), "--device", "cpu", "--precision", "auto", "-q"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("transfersep separate: warning: ")
    assert "int8 inference agrees with fp32 to only" in err[0] and err[0].endswith("separating in fp32")
    out = tmp_path / "separated" / "slakh-none-whole-stems" / "My Song"
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{n}.wav" for n in NAMES)
