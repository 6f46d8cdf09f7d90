"""Indexes of the real layouts: tracks, grouping into sources, splits, durations, quirks, bad roots."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

import datatrees
from project import CONF
from transfersep.audio import AudioReadError
from transfersep.data import bach10, dagstuhl, musdb, slakh, stems
from transfersep.data.index import DatasetError


def names(refs) -> list[str]:
    return [Path(r.path).name for r in refs]


def by_name(idx):
    return {t.name: t for t in idx.tracks}


# --- MUSDB18 ---------------------------------------------------------------------------------


def test_musdb_hq_splits_and_accompaniment(trees):
    idx = musdb.index(trees["musdb"])
    t = by_name(idx)
    assert idx.layout == "hq"
    # the two validation-list tracks leave train; test/ is test
    assert {n for n, x in t.items() if x.split == "val"} == {
        "Actions - One Minute Smile",
        "Johnny Lokke - Promises & Lies",
    }
    assert {n for n, x in t.items() if x.split == "test"} == {"PR - Oh No", "Al James - Schoolboy Facination"}
    assert t["Jay's Song (Live.)"].split == "train"
    song = t["Johnny Lokke - Promises & Lies"]
    assert names(song.sources["accompaniment"]) == ["drums.wav", "bass.wav", "other.wav"]
    assert names(song.sources["vocals"]) == ["vocals.wav"]
    ref = song.sources["vocals"][0]
    assert (ref.sample_rate, ref.channels) == (44100, 2)
    assert song.seconds == pytest.approx(3.0)


def test_musdb_both_grouping(trees):
    idx = musdb.index(trees["musdb"], ["bass", "drums", "other"])
    song = idx.tracks[0]
    assert {k: names(v) for k, v in song.sources.items()} == {
        "bass": ["bass.wav"],
        "drums": ["drums.wav"],
        "other": ["other.wav"],
    }


def test_musdb_missing_stem_names_the_file(trees, tmp_path):
    root = shutil.copytree(trees["musdb"], tmp_path / "m")
    victim = root / "test" / "PR - Oh No" / "vocals.wav"
    victim.unlink()
    with pytest.raises(DatasetError, match="vocals.wav is missing"):
        musdb.index(root)


def test_musdb_wrong_roots(trees, tmp_path):
    with pytest.raises(DatasetError, match="split folder"):
        musdb.index(trees["musdb"] / "train")
    with pytest.raises(DatasetError, match="is not MUSDB18"):
        musdb.index(trees["slakh"])
    with pytest.raises(DatasetError, match="does not exist"):
        musdb.index(tmp_path / "musdb18hq_typo")


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")
def test_musdb_stem_mp4_streams(trees):
    idx = musdb.index(trees["musdb_mp4"])
    assert idx.layout == "stem"
    song = by_name(idx)["Johnny Lokke - Promises & Lies"]
    assert song.split == "val"
    assert [r.stream for r in song.sources["accompaniment"]] == [1, 2, 3]  # drums, bass, other
    assert [r.stream for r in song.sources["vocals"]] == [4]
    assert song.seconds == pytest.approx(3.0, abs=0.1)


def test_musdb_stem_mp4_without_ffmpeg_says_so(trees, tmp_path, monkeypatch):
    root = tmp_path / "musdb18" / "train"
    root.mkdir(parents=True)
    (root / "Actions - One Minute Smile.stem.mp4").write_bytes(b"\0" * 64)
    monkeypatch.setattr("transfersep.data.ffmpeg.shutil.which", lambda tool: None)
    with pytest.raises(RuntimeError, match="ffprobe.*not found.*install ffmpeg"):
        musdb.index(tmp_path / "musdb18")


# --- Slakh2100 -------------------------------------------------------------------------------


def test_slakh_redux_grouping_and_quirks(trees):
    idx = slakh.index(trees["slakh"])
    t = by_name(idx)
    assert idx.layout == "redux"
    assert "Track01877" not in t  # omitted/ is never used
    assert {n: x.split for n, x in t.items()} == {
        "Track00001": "train",
        "Track00002": "train",
        "Track01501": "val",
        "Track01876": "test",
    }
    one = t["Track00001"]
    assert {k: names(v) for k, v in one.sources.items()} == {
        "bass": ["S01.flac"],
        "drums": ["S03.flac"],
        "piano_guitar": ["S00.flac", "S04.flac"],
    }
    assert "S07 (not rendered: plugin_name None)" in one.ignored
    assert "S05.flac (Strings)" in one.ignored
    assert (one.sources["bass"][0].sample_rate, one.sources["bass"][0].channels) == (44100, 1)
    # no piano or guitar in this track: the source is silence, not an error
    assert t["Track00002"].sources["piano_guitar"] == []


def test_slakh_original_split_by_id(trees):
    idx = slakh.index(trees["slakh_original"])
    assert idx.layout == "original"
    assert {t.name: t.split for t in idx.tracks} == {
        "Track00001": "train",
        "Track00002": "train",
        "Track01501": "val",
        "Track01876": "test",
        "Track01877": "test",
    }


def test_babyslakh_trusts_files_not_flag(trees):
    idx = slakh.index(trees["babyslakh"])
    assert idx.layout == "baby"
    meta = yaml.safe_load((trees["babyslakh"] / "Track00001" / "metadata.yaml").read_text())
    assert meta["stems"]["S00"]["audio_rendered"] is False  # the flag lies ...
    first = idx.tracks[0]
    assert names(first.sources["bass"]) == ["S00.wav"]  # ... the file is there and used
    assert first.sources["bass"][0].sample_rate == 16000
    assert [t.split for t in idx.tracks] == ["train", "train", "train", "val", "test"]


def test_slakh_missing_rendered_stem_is_silence_and_recorded(trees, tmp_path):
    root = shutil.copytree(trees["slakh"], tmp_path / "s")
    (root / "train" / "Track00001" / "stems" / "S01.flac").unlink()
    one = by_name(slakh.index(root))["Track00001"]
    assert one.sources["bass"] == []
    assert any("S01" in m for m in one.missing)


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("inst_class", "piano", "inst_class is 'piano'"),
        ("is_drum", "yes", "is_drum is 'yes'"),
    ],
)
def test_slakh_unexpected_metadata_names_file(trees, tmp_path, field, value, message):
    root = shutil.copytree(trees["slakh"], tmp_path / "s")
    meta_path = root / "train" / "Track00002" / "metadata.yaml"
    meta = yaml.safe_load(meta_path.read_text())
    meta["stems"]["S00"][field] = value
    meta_path.write_text(yaml.safe_dump(meta))
    with pytest.raises(DatasetError, match=message) as e:
        slakh.index(root)
    assert str(meta_path) in str(e.value)


def test_slakh_missing_metadata_and_wrong_root(trees, tmp_path):
    root = shutil.copytree(trees["slakh"], tmp_path / "s")
    (root / "test" / "Track01876" / "metadata.yaml").unlink()
    with pytest.raises(DatasetError, match="Track01876/metadata.yaml is missing"):
        slakh.index(root)
    with pytest.raises(DatasetError, match="is not Slakh2100"):
        slakh.index(trees["bach10"])


def test_slakh_unreadable_audio_names_file(trees, tmp_path):
    root = shutil.copytree(trees["slakh"], tmp_path / "s")
    bad = root / "train" / "Track00002" / "stems" / "S00.flac"
    bad.write_bytes(b"not audio at all" * 10)
    with pytest.raises(AudioReadError, match="S00.flac"):
        slakh.index(root)


# --- Bach10 ----------------------------------------------------------------------------------


def test_bach10_saxphone_and_split(trees):
    idx = bach10.index(trees["bach10"])
    t = by_name(idx)
    assert {n: x.split for n, x in t.items()} == {
        "01-AchGottundHerr": "train",
        "02-AchLiebenChristen": "train",
        "05-DieNacht": "train",
        "10-NunBitten": "test",
    }
    assert names(t["05-DieNacht"].sources["saxophone"]) == ["05-DieNacht-saxphone.wav"]
    assert "05-DieNacht.wav" in t["05-DieNacht"].ignored  # the ensemble mix is never used
    assert bach10.index(trees["bach10"], test_pieces=[2]).split("test")[0].name == "02-AchLiebenChristen"


def test_bach10_missing_instrument_and_nested_root(trees, tmp_path):
    root = shutil.copytree(trees["bach10"], tmp_path / "x" / "Bach10")
    (root / "01-AchGottundHerr" / "01-AchGottundHerr-bassoon.wav").unlink()
    with pytest.raises(DatasetError, match="01-AchGottundHerr-bassoon.wav is missing"):
        bach10.index(root)
    with pytest.raises(DatasetError, match="point the root at"):
        bach10.index(tmp_path / "x")


# --- Dagstuhl ChoirSet -----------------------------------------------------------------------


def test_dagstuhl_eligible_takes_and_grouping(trees):
    idx = dagstuhl.index(trees["dagstuhl"])
    t = by_name(idx)
    # SE exercises, the Basses take and a take whose tenor has no DYN mic are left out
    assert set(t) == {
        "DCS_LI_FullChoir_Take01",
        "DCS_LI_QuartetA_Take01",
        "DCS_LI_QuartetA_Take02",
        "DCS_LI_QuartetB_Take01",
        "DCS_TP_QuartetA_Take01",
        "DCS_TP_QuartetB_Take01",
    }
    fc = t["DCS_LI_FullChoir_Take01"]
    assert names(fc.sources["male"]) == ["DCS_LI_FullChoir_Take01_B2_DYN.wav", "DCS_LI_FullChoir_Take01_T2_DYN.wav"]
    assert names(fc.sources["female"]) == ["DCS_LI_FullChoir_Take01_A2_DYN.wav", "DCS_LI_FullChoir_Take01_S1_DYN.wav"]
    assert "DCS_LI_FullChoir_Take01_S2_LRX.wav" in fc.ignored and "DCS_LI_FullChoir_Take01_Stereo_STM.wav" in fc.ignored
    assert fc.sources["male"][0].sample_rate == 22050
    assert any("DCS_LI_QuartetB_Take02" in n and "T" in n for n in idx.notes)


def test_dagstuhl_split_by_take(trees):
    split = {t.name: t.split for t in dagstuhl.index(trees["dagstuhl"]).tracks}
    # per piece: last eligible take test, the one before validation
    assert split == {
        "DCS_LI_FullChoir_Take01": "train",
        "DCS_LI_QuartetA_Take01": "train",
        "DCS_LI_QuartetA_Take02": "val",
        "DCS_LI_QuartetB_Take01": "test",
        "DCS_TP_QuartetA_Take01": "train",
        "DCS_TP_QuartetB_Take01": "test",
    }
    explicit = dagstuhl.index(trees["dagstuhl"], test_takes=["DCS_TP_QuartetA_Take01"], val_takes=[])
    assert [t.name for t in explicit.split("test")] == ["DCS_TP_QuartetA_Take01"]
    with pytest.raises(DatasetError, match="not eligible"):
        dagstuhl.index(trees["dagstuhl"], test_takes=["DCS_LI_QuartetB_Take02"])


def test_dagstuhl_wrong_root(trees, tmp_path):
    with pytest.raises(DatasetError, match="audio_wav_22050_mono"):
        dagstuhl.index(trees["bach10"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError):
        dagstuhl.index(tmp_path / "empty")


# --- Remixpacks and folders of stems ---------------------------------------------------------


def test_remixpacks_patterns(trees):
    # "Clap" is no snare: Artist E has no snare stem, which is refused unless such songs are skipped
    with pytest.raises(DatasetError, match=r"class 'snare' matches no file in song Artist E - Five; its files: Clap"):
        stems.index(trees["remixpacks"], ["snare", "kick_drum", "cymbals"], name="remixpacks")
    idx = stems.index(trees["remixpacks"], ["snare", "kick_drum", "cymbals"], name="remixpacks", missing_sources="skip")
    t = by_name(idx)
    a = t["Artist A - Song One (Remix Pack)"]
    assert {k: names(v) for k, v in a.sources.items()} == {
        "snare": ["SNARE_top.wav"],
        "kick_drum": ["Kick 1.wav"],
        "cymbals": ["HiHat Open.wav"],
    }
    assert sorted(x.split(" (")[0] for x in a.ignored) == ["Bass.wav", "Vox Lead.wav"]
    c = t["Artist C - Three"]
    assert names(c.sources["kick_drum"]) == ["BD.wav"] and names(c.sources["cymbals"]) == ["OH.wav"]
    assert any(x.startswith("Kick+Snare Bus.wav (matches several") for x in c.ignored)
    assert names(t["Artist B - Track Two"].sources["cymbals"]) == ["Crash.wav", "Ride.wav"]
    assert "Artist E - Five" not in t and any("left out: Artist E - Five (snare)" in n for n in idx.notes)
    # flat folder: every third song (sorted) is test
    assert [x.name for x in idx.split("test")] == ["Artist C - Three", "Artist F - Six"]


def test_stems_custom_patterns_regex_and_split_folders(trees, tmp_path):
    root = tmp_path / "mystems"
    for split in ("train", "test"):
        shutil.copytree(trees["remixpacks"] / "Artist B - Track Two", root / split / "song")
    patterns = {"ride": ["re:^ri", "crash"], "kit": ["*snare*", "*kick*", "*syn*", "ride"]}
    idx = stems.index(root, ["ride", "kit"], patterns)
    assert sorted(t.split for t in idx.tracks) == ["test", "train"]
    # "Ride" matches both classes' patterns: ignored rather than corrupting either source
    assert names(idx.tracks[0].sources["ride"]) == ["Crash.wav"]
    assert "Ride.wav (matches several classes: ['ride', 'kit'])" in idx.tracks[0].ignored
    assert names(idx.tracks[0].sources["kit"]) == ["Snare.wav", "Synth.wav", "kick.wav"]
    seen = r"song test/song \(and 1 other song\(s\)\); its files: Crash.wav \(kit\), Ride.wav \(ride\+kit\), "
    with pytest.raises(DatasetError, match=r"class 'ride' matches no file in " + seen):
        stems.index(root, ["ride", "kit"], {"ride": ["re:^ri"], "kit": ["*"]})  # "Ride" matches both: none left
    idx = stems.index(root, ["ride"], {"ride": ["RIDE"]})  # globs are case-insensitive
    assert names(idx.tracks[0].sources["ride"]) == ["Ride.wav"]
    with pytest.raises(DatasetError, match="no name patterns for class 'lead'"):
        stems.index(root, ["lead"], {})
    with pytest.raises(DatasetError, match="not a valid pattern"):
        stems.index(root, ["lead"], {"lead": ["re:("]})
    with pytest.raises(DatasetError, match="no stem .* matches"):
        stems.index(root, ["lead"], {"lead": ["*vocal*"]})


def test_remixpacks_config_patterns_match_builtin():
    conf = yaml.safe_load((CONF / "downstream" / "remixpacks.yaml").read_text())
    assert conf["dataset"]["patterns"] == stems.REMIXPACKS_PATTERNS


def test_datatree_layout_is_the_real_layout(trees):
    # guard the fixtures themselves: a Slakh stem is mono 44.1 kHz FLAC, ids have gaps
    s = sorted(p.name for p in (trees["slakh"] / "train" / "Track00001" / "stems").iterdir())
    assert s == ["S00.flac", "S01.flac", "S03.flac", "S04.flac", "S05.flac"]
    assert (trees["dagstuhl"] / "audio_wav_22050_mono" / "DCS_LI_QuartetA_Take01_S2_DYN.wav").is_file()
    assert datatrees.BACH10_PIECES[-1] == "10-NunBitten"
