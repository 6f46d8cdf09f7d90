"""Stems of one song with different lengths, and empty files: refused by default, padded or trimmed
when asked (and said so), through the loaders and `transfersep data`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from transfersep.cli import main
from transfersep.data.index import DatasetError
from transfersep.data.registry import build_index

PATTERNS = "patterns={lead: ['*vox*'], rhythm: ['*gtr*']}"


def song(root: Path, name: str, seconds: dict[str, float], sr: int = 44_100) -> None:
    d = root / "train" / name
    d.mkdir(parents=True)
    for stem, s in seconds.items():
        n = int(round(s * sr))
        sf.write(d / f"{stem}.wav", (0.1 * np.sin(np.arange(n) / 7.0)).astype(np.float32), sr, subtype="PCM_16")


@pytest.fixture()
def uneven(tmp_path) -> Path:
    root = tmp_path / "stems"
    song(root, "even", {"vox": 2.0, "gtr": 2.0})
    song(root, "uneven", {"vox": 2.0, "gtr": 1.5})
    song(root, "codec-padding", {"vox": 2.0, "gtr": 2.02})  # within the 50 ms tolerance
    return root


def index(root: Path, **opts):
    return build_index(
        "stems",
        [str(root)],
        ["lead", "rhythm"],
        patterns={"lead": ["*vox*"], "rhythm": ["*gtr*"]},
        test_every=0,
        **opts,
    )


def test_different_lengths_are_an_error_naming_files_and_lengths(uneven):
    with pytest.raises(DatasetError) as e:
        index(uneven)
    msg = str(e.value)
    assert "stems of uneven differ in length" in msg
    assert f"{uneven / 'train' / 'uneven' / 'gtr.wav'} 1.500 s" in msg
    assert f"{uneven / 'train' / 'uneven' / 'vox.wav'} 2.000 s" in msg
    # the fix names the key a run's command line sets
    assert "downstream.dataset.stem_lengths=pad" in msg and "downstream.dataset.stem_lengths=trim" in msg
    assert "\n" not in msg


def test_pad_keeps_lengths_and_says_so(uneven):
    idx = index(uneven, stem_lengths="pad")
    t = {t.name: t for t in idx.tracks}["uneven"]
    assert sorted(r.frames for refs in t.sources.values() for r in refs) == [66_150, 88_200]
    (note,) = [n for n in idx.notes if n.startswith("stem_lengths=pad")]
    assert "1 track(s)" in note and "uneven (1.50-2.00 s)" in note and "padded with silence" in note


def test_trim_cuts_every_stem_to_the_shortest_and_says_so(uneven):
    from transfersep.data.mixing import track_samples

    idx = index(uneven, stem_lengths="trim")
    t = {t.name: t for t in idx.tracks}["uneven"]
    assert [r.frames for refs in t.sources.values() for r in refs] == [66_150, 66_150]
    assert track_samples(t) == 24_000  # 1.5 s at 16 kHz: excerpts never reach the padded part
    assert any(n.startswith("stem_lengths=trim") and "cut to the shortest" in n for n in idx.notes)


def test_empty_file_is_an_error_whatever_the_policy(tmp_path):
    root = tmp_path / "stems"
    song(root, "a", {"vox": 1.0, "gtr": 0.0})
    for policy in ("error", "pad", "trim"):
        with pytest.raises(DatasetError, match=r"gtr.wav: holds no audio \(0 frames\)"):
            index(root, stem_lengths=policy)


def test_unknown_policy_names_the_choices(uneven):
    with pytest.raises(DatasetError, match="downstream.dataset.stem_lengths='cut': choose one of error, pad, trim"):
        index(uneven, stem_lengths="cut")


def test_data_command_one_line_exit_2(uneven, capsys):
    argv = ["data", "stems", str(uneven), "--sources", "lead,rhythm", "--option", PATTERNS, "--option", "test_every=0"]
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "stems of uneven differ in length" in err[0] and captured.out == ""
    assert main([*argv, "--option", "stem_lengths=pad", "--summary"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out)["train"]["tracks"] == 3
    assert main([*argv, "--option", "stem_lengths=pad"]) == 0
    notes = json.loads(capsys.readouterr().out)["notes"]
    assert any("padded with silence" in n for n in notes)


def test_run_summary_repeats_the_padding_note():
    from types import SimpleNamespace

    from transfersep.run.console import data_notes, run_summary

    desc = {
        "notes": [
            "stems matching no class are ignored; 0 ignored in all",
            "stem_lengths=pad: stems of 1 track(s) differ in length and were padded with silence "
            "to the longest: uneven (1.50-2.00 s)",
        ]
    }
    plan = SimpleNamespace(stage="finetune", subdir="finetune/x", run_dir=Path("/runs/x"))
    text = run_summary(plan, {"steps": 4}, 3.0, data_notes(desc))
    assert "note    stem_lengths=pad: stems of 1 track(s)" in text and "ignored in all" not in text
