"""Every declared class must be found in every song of a folder of stems: a class that matches no
file is refused in one line naming the class, the song and its files (the data command, a training
run), or, with ``missing_sources=skip``, the songs lacking it are left out and said so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from project import ROOT
from transfersep.cli import main
from transfersep.data import stems
from transfersep.data.index import DatasetError
from transfersep.run.console import data_notes

# the patterns of the report: "*vocal*" does not match "Lead_Vox"
PATTERNS = 'patterns={lead: ["*vocal*"], rhythm: ["*gtr*"]}'


def song(root: Path, name: str, files: list[str], seconds: float = 2.0) -> Path:
    d = root / name
    d.mkdir(parents=True)
    n = int(seconds * 16_000)
    for k, f in enumerate(files):
        x = 0.1 * np.sin(2 * np.pi * (220 + 110 * k) * np.arange(n) / 16_000)
        sf.write(d / f, x.astype(np.float32), 16_000, subtype="PCM_16")
    return d


def tree(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


@pytest.fixture()
def lead_vox(tmp_path) -> Path:
    """Two songs: one whose lead is named "Lead_Vox" (no "vocal" in it), one with a "vocal" stem."""
    root = tmp_path / "stems"
    song(root / "train", "a-song", ["Lead_Vox.wav", "rhythm_gtr.wav"])
    song(root / "train", "b-song", ["lead vocal.wav", "rhythm gtr.wav"])
    song(root / "test", "c-song", ["vocal.wav", "gtr.wav"])
    return root


def test_a_class_matching_no_file_of_a_song_is_refused_naming_class_song_and_files(lead_vox):
    with pytest.raises(DatasetError) as e:
        stems.index(lead_vox, ["lead", "rhythm"], {"lead": ["*vocal*"], "rhythm": ["*gtr*"]})
    msg = str(e.value)
    assert "\n" not in msg
    assert "class 'lead' matches no file in song train/a-song" in msg
    assert "its files: Lead_Vox.wav (no class), rhythm_gtr.wav (rhythm)" in msg
    assert "downstream.dataset.patterns.lead" in msg and "downstream.dataset.missing_sources=skip" in msg


def test_skip_leaves_the_song_out_and_says_so(lead_vox):
    idx = stems.index(lead_vox, ["lead", "rhythm"], {"lead": ["*vocal*"], "rhythm": ["*gtr*"]}, missing_sources="skip")
    assert sorted(t.name for t in idx.tracks) == ["b-song", "c-song"]
    assert all(t.has("lead") and t.has("rhythm") for t in idx.tracks)  # nothing trains as silence
    (note,) = [n for n in idx.notes if n.startswith("missing_sources=skip")]
    assert "1 song(s) lacking a class were left out: a-song (lead)" in note
    assert data_notes({"notes": idx.notes}) == [note]  # the end-of-run summary repeats it


def test_an_unknown_policy_names_the_key_and_the_choices(lead_vox):
    with pytest.raises(DatasetError, match=r"downstream.dataset.missing_sources='drop': choose one of refuse, skip"):
        stems.index(lead_vox, ["lead"], {"lead": ["*"]}, missing_sources="drop")


def test_data_command_summary_refuses_in_one_line_and_shows_skipped_songs(lead_vox, capsys):
    argv = ["data", "stems", str(lead_vox), "--sources", "lead,rhythm", "--option", PATTERNS, "--summary"]
    before = tree(lead_vox)
    assert main(argv) == 2
    out = capsys.readouterr()
    err = out.err.strip().splitlines()
    assert out.out == "" and len(err) == 1
    assert err[0].startswith("error: stems: class 'lead' matches no file in song train/a-song")
    assert main([*argv, "--option", "missing_sources=skip"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["train"]["tracks"] == 1 and summary["test"]["tracks"] == 1
    assert any("left out: a-song (lead)" in n for n in summary["notes"])
    assert tree(lead_vox) == before  # the command only reads


@pytest.mark.slow  # a fresh interpreter composes the config and imports lightning: ~10-20 s
def test_training_on_a_class_that_matches_nothing_stops_in_one_line(tmp_path, lead_vox):
    runs = tmp_path / "runs"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline", "TRANSFERSEP_RUNS": str(runs)}
    env.pop("HYDRA_FULL_ERROR", None)
    cmd = [
        sys.executable,
        "train.py",
        "experiment=tiny",
        "logger=csv",
        "pretrain=none",
        "downstream=stems",
        f"paths.stems={lead_vox}",
        f"paths.runs_dir={runs}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        "downstream.dataset.sources=[lead,rhythm]",
        "downstream.dataset.patterns={lead: ['*vocal*'], rhythm: ['*gtr*']}",
    ]
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 2, p.stderr[-2000:]
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "class 'lead' matches no file in song train/a-song" in lines[0], lines
    assert not runs.exists() or tree(runs) == []  # a refused run leaves no run directory
    assert not (tmp_path / "cache").exists()
