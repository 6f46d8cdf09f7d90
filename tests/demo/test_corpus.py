"""The demo corpus generator: layouts, metadata, quirks, determinism, caching, real audio.

The corpus (``--size test``) is generated once per session. Checks use independent references:
the layouts and schema of the real datasets, the music21 score parsed here, GM program
numbers read back from the MIDI files with mido, integer sums of the written PCM, spectra.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile as sf
import yaml

from transfersep.demo import corpus, scores
from transfersep.demo.loudness import integrated_loudness

SLAKH_TOP = {
    "UUID",
    "audio_dir",
    "midi_dir",
    "lmd_midi_dir",
    "normalization_factor",
    "normalized",
    "overall_gain",
    "target_peak",
    "stems",
}
SLAKH_STEM = {
    "audio_rendered",
    "inst_class",
    "integrated_loudness",
    "is_drum",
    "midi_program_name",
    "midi_saved",
    "plugin_name",
    "program_num",
}
# GM families in program order, named as Slakh's inst_class does.
FAMILIES = [
    "Piano",
    "Chromatic Percussion",
    "Organ",
    "Guitar",
    "Bass",
    "Strings",
    "Strings (continued)",
    "Brass",
    "Reed",
    "Pipe",
    "Synth Lead",
    "Synth Pad",
    "Sound Effects",
    "Ethnic",
    "Percussive",
    "Sound effects",
]
BACH10 = [
    "01-AchGottundHerr",
    "02-AchLiebenChristen",
    "03-ChristederdubistTagundLicht",
    "04-ChristeDuBeistand",
    "05-DieNacht",
    "06-DieSonne",
    "07-HerrGott",
    "08-FuerDeinenThron",
    "09-Jesus",
    "10-NunBitten",
]
INSTRUMENTS = ("violin", "clarinet", "saxphone", "bassoon")
MUSDB_VALIDATION = {
    "Actions - One Minute Smile",
    "Clara Berry And Wooldog - Waltz For My Victims",
    "Johnny Lokke - Promises & Lies",
    "Patrick Talbot - A Reason To Leave",
    "Triviul - Angelsaint",
    "Alexander Ross - Goodbye Bolero",
    "Fergessen - Nos Palpitants",
    "Leaf - Summerghost",
    "Skelpolu - Human Mistakes",
    "Young Griffo - Pennies",
    "ANiMAL - Rockshow",
    "James May - On The Line",
    "Meaxic - Take A Step",
    "Traffic Experiment - Sirens",
}
DCS = re.compile(
    r"^DCS_(LI|TP|SE)_(FullChoir|QuartetA|QuartetB|Basses)_([A-Za-z0-9]+)_"
    r"(?:([SATB])(\d+)_(DYN|HSM|LRX)"
    r"|(Stereo_STM|Stereo_STL|Stereo_STR|StereoReverb_STM|Piano_SPL|Piano_SPR))\.wav$"
)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("demo_corpus")
    marker = corpus.build_corpus(out, "test", 0, workers=2, log=lambda *_: None)
    return out, marker


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.asarray(x, dtype=np.float64) ** 2)))


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _tree_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): _md5(p) for p in sorted(root.rglob("*")) if p.is_file()}


def test_slakh_layout_and_audio_format(built):
    root = built[0] / "slakh2100_flac_redux"
    assert sorted(p.name for p in root.iterdir()) == ["omitted", "test", "train", "validation"]
    tracks = sorted(root.glob("*/Track*"))
    assert len(tracks) == 6 and all(re.fullmatch(r"Track\d{5}", t.name) for t in tracks)
    for t in tracks:
        assert {p.name for p in t.iterdir()} == {"metadata.yaml", "mix.flac", "stems", "all_src.mid", "MIDI"}
        meta = yaml.safe_load((t / "metadata.yaml").read_text())
        rendered = {sid for sid, s in meta["stems"].items() if s["plugin_name"] != "None"}
        assert {p.stem for p in (t / "stems").glob("*.flac")} == rendered
        assert {p.stem for p in (t / "MIDI").glob("*.mid")} == set(meta["stems"])
        for f in [t / "mix.flac", *(t / "stems").glob("*.flac")]:
            info = sf.info(str(f))
            got = (info.samplerate, info.channels, info.format, info.subtype)
            assert got == (44100, 1, "FLAC", "PCM_16"), f


def test_slakh_metadata_schema_and_quirks(built):
    root = built[0] / "slakh2100_flac_redux"
    gaps = unrendered = 0
    lacking = set()
    for t in sorted(root.glob("*/Track*")):
        text = (t / "metadata.yaml").read_text()
        meta = yaml.safe_load(text)
        assert set(meta) == SLAKH_TOP
        assert re.fullmatch(r"[0-9a-f]{32}", meta["UUID"]) and meta["normalized"] is True
        assert (meta["audio_dir"], meta["midi_dir"]) == ("stems", "MIDI")
        ids = sorted(meta["stems"])
        assert all(re.fullmatch(r"S\d{2}", i) for i in ids)
        gaps += [int(i[1:]) for i in ids] != list(range(len(ids)))
        for sid, s in meta["stems"].items():
            program = s["program_num"]
            if s["plugin_name"] == "None":
                unrendered += 1
                assert set(s) == SLAKH_STEM - {"integrated_loudness"} and s["audio_rendered"] is False
                assert not (t / "stems" / f"{sid}.flac").exists()
            else:
                assert set(s) == SLAKH_STEM and isinstance(s["integrated_loudness"], float)
            if s["is_drum"]:
                assert (program, s["inst_class"], s["midi_program_name"]) == (128, "Drums", "Drums")
            else:
                assert s["inst_class"] == FAMILIES[program // 8]
            # The stem's MIDI file really plays that program (drums: on channel 10).
            msgs = [m for tr in mido.MidiFile(t / "MIDI" / f"{sid}.mid").tracks for m in tr]
            notes = [m for m in msgs if m.type == "note_on" and m.velocity > 0]
            assert notes
            if s["is_drum"]:
                assert {m.channel for m in notes} == {9}
            else:
                assert [m.program for m in msgs if m.type == "program_change"] == [program]
        classes = {s["inst_class"] for s in meta["stems"].values()}
        lacking |= {c for c in ("Guitar", "Piano") if c not in classes and t.parent.name == "train"}
        assert "plugin_name: None" in text or all(s["audio_rendered"] for s in meta["stems"].values())
    assert gaps >= 1 and unrendered >= 1 and lacking == {"Guitar", "Piano"}


def test_mix_is_the_sum_of_stems(built):
    out = built[0]
    mixes = [(t / "mix.flac", sorted((t / "stems").glob("*.flac"))) for t in out.glob("slakh2100_flac_redux/*/Track*")]
    mixes += [
        (d / "mixture.wav", [d / f"{s}.wav" for s in ("drums", "bass", "other", "vocals")])
        for d in out.glob("musdb18hq/*/*")
    ]
    mixes += [
        (d / f"{d.name}.wav", [d / f"{d.name}-{i}.wav" for i in INSTRUMENTS]) for d in (out / "Bach10").glob("??-*")
    ]
    assert len(mixes) == 6 + 5 + 10
    for mix, stems in mixes:
        total = sum(sf.read(str(s), dtype="int16")[0].astype(np.int64) for s in stems)
        m = sf.read(str(mix), dtype="int16")[0].astype(np.int64)
        assert m.shape == total.shape and np.abs(m - total).max() <= len(stems), mix
        assert _rms(m) > 0.01 * 32768, mix


def test_musdb_layout(built):
    root = built[0] / "musdb18hq"
    assert sorted(p.name for p in root.iterdir()) == ["test", "train"]
    train = {p.name for p in (root / "train").iterdir()}
    assert train & MUSDB_VALIDATION and train - MUSDB_VALIDATION
    names = train | {p.name for p in (root / "test").iterdir()}
    assert all(re.fullmatch(r"[^/]+ - [^/]+", n) for n in names)
    assert any("&" in n for n in names) and any("'" in n for n in names) and any("(" in n for n in names)
    for d in root.glob("*/*"):
        assert {p.stem for p in d.iterdir()} == {"mixture", "drums", "bass", "other", "vocals"}
        for f in d.iterdir():
            info = sf.info(str(f))
            assert (info.samplerate, info.channels, info.subtype) == (44100, 2, "PCM_16"), f


def test_bach10_layout_and_pitches(built):
    root = built[0] / "Bach10"
    assert (root / "readme.txt").is_file() and (root / "Code").is_dir()
    assert sorted(p.name for p in root.glob("??-*")) == BACH10
    for name in BACH10:
        d = root / name
        want = {f"{name}{s}" for s in (".wav", ".mid", ".txt", "-GTF0s.mat")}
        want |= {f"{name}-{i}.wav" for i in INSTRUMENTS}
        assert {p.name for p in d.iterdir()} == want
        for f in d.glob("*.wav"):
            info = sf.info(str(f))
            assert (info.samplerate, info.channels, info.subtype) == (44100, 1, "PCM_16"), f
    # The first note of each part of piece 01 is the first note of BWV 255's part (score read here).
    from music21 import corpus as m21

    score = m21.parse("bach/bwv255")
    for k, inst in enumerate(INSTRUMENTS):
        f0 = score.parts[k].flatten().notes[0].pitch.frequency
        x, sr = sf.read(str(root / BACH10[0] / f"{BACH10[0]}-{inst}.wav"))
        spec, freqs = _spectrum(x[int(0.05 * sr) : int(0.4 * sr)], sr)
        at_f0 = spec[(freqs > f0 * 0.97) & (freqs < f0 * 1.03)].max()
        semitones = (f0 * 2 ** (1 / 12), f0 * 2 ** (-1 / 12))
        nbrs = [spec[(freqs > f * 0.99) & (freqs < f * 1.01)].max() for f in semitones]
        assert at_f0 > 10 * max(nbrs), inst


def _spectrum(x: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x)), 1 << 15))
    return spec, np.fft.rfftfreq(1 << 15, 1 / sr)


def test_every_bach10_note_sounds_at_its_pitch(built):
    """Each note listed in NN-Name.txt is heard in its part at its fundamental (catches notes a
    SoundFont leaves silent)."""
    root = built[0] / "Bach10"
    checked = 0
    for name in BACH10:
        parts = [sf.read(str(root / name / f"{name}-{i}.wav"))[0] for i in INSTRUMENTS]
        for line in (root / name / f"{name}.txt").read_text().splitlines():
            on, off, pitch, part = (int(v) for v in line.split("\t"))
            if off - on < 150:
                continue
            start, stop = on / 1000 + 0.04, on / 1000 + min(off - on, 300) / 1000
            x = parts[part - 1][int(start * 44100) : int(stop * 44100)]
            spec, freqs = _spectrum(x, 44100)
            f0 = 440.0 * 2 ** ((pitch - 69) / 12)
            assert spec[(freqs > f0 * 0.97) & (freqs < f0 * 1.03)].max() > 0.05 * spec.max(), (name, line)
            checked += 1
    assert checked > 100


def test_dagstuhl_layout_and_take_filter(built):
    root = built[0] / "DagstuhlChoirSet_V1.2.3"
    audio = root / "audio_wav_22050_mono"
    for a in (
        "annotations_csv_F0_CREPE",
        "annotations_csv_F0_PYIN",
        "annotations_csv_F0_manual",
        "annotations_csv_beat",
        "annotations_csv_scorerepresentation",
    ):
        assert (root / a).is_dir() and not any((root / a).iterdir())
    takes: dict[str, dict[str, dict[str, set]]] = {}
    for f in audio.iterdir():
        m = DCS.match(f.name)
        assert m, f.name
        info = sf.info(str(f))
        assert (info.samplerate, info.channels, info.subtype) == (22050, 1, "PCM_16"), f
        take = "_".join(m.group(i) for i in (1, 2, 3))
        if m.group(4):
            singer = takes.setdefault(take, {}).setdefault(m.group(4), {})
            singer.setdefault(m.group(5), set()).add(m.group(6))
        x = sf.read(str(f))[0]
        assert _rms(x) > 1e-3, f
    eligible = {
        t
        for t, parts in takes.items()
        if t.split("_")[0] in ("LI", "TP")
        and all(any("DYN" in mics for mics in parts.get(p, {}).values()) for p in "SATB")
    }
    assert eligible == {"LI_QuartetA_Take01", "LI_FullChoir_Take01", "TP_QuartetA_Take01"}
    full = takes["LI_FullChoir_Take01"]
    assert all(len(full[p]) >= 2 and sum("DYN" in m for m in full[p].values()) == 1 for p in "SATB")
    assert set(takes["LI_Basses_Take01"]) == {"B"} and "SE_QuartetA_Cadences" in takes
    assert (audio / "DCS_SE_QuartetA_Cadences_Piano_SPL.wav").is_file()


def test_remixpacks_layout_and_drum_classes(built):
    root = built[0] / "remixpacks"
    assert sorted(p.name for p in root.iterdir()) == ["test", "train"]
    formats = set()
    centroids: dict[str, list[float]] = {"kick": [], "cymbals": []}
    for song in root.glob("*/*"):
        names = [p.stem for p in song.glob("*.wav")]
        assert any("kick" in n.lower() for n in names) and any(re.search("snare|snr", n, re.I) for n in names)
        assert any(re.search("cymbal|hat|hh|ride|crash", n, re.I) for n in names)
        assert any(re.search("bass|synth|keys|pluck|lead", n, re.I) for n in names)  # stems to ignore
        for f in song.glob("*.wav"):
            info = sf.info(str(f))
            formats.add((info.samplerate, info.channels, info.subtype))
            x, sr = sf.read(str(f))
            assert _rms(x) > 1e-3, f
            kind = (
                "kick"
                if f.stem in ("Kick_01", "KICK", "Kick In")
                else ("cymbals" if f.stem in ("Cymbals", "Cymbals & Hats", "Hi-Hat", "HH Closed") else None)
            )
            if kind:
                spec, freqs = _spectrum(x.mean(axis=1)[: sr * 4], sr)
                centroids[kind].append(float((spec * freqs).sum() / spec.sum()))
    assert formats == {(44100, 2, "PCM_16"), (48000, 2, "PCM_24")}
    assert max(centroids["kick"]) < min(centroids["cymbals"])


def test_disjoint_works(built):
    # the music's scores (the speech corpus reads texts: tests/demo/test_speech_corpus.py)
    items = {n: e["items"] for n, e in built[1]["datasets"].items() if n != "librimix"}
    works = {n: {i["work"] for i in it} for n, it in items.items()}
    downstream = works["bach10"] | works["dagstuhl"] | works["remixpacks"]
    assert works["bach10"] == set(scores.BACH10_WORKS.values())
    assert not downstream & (works["slakh"] | works["musdb"]) and not works["slakh"] & works["musdb"]
    omitted = [i for i in items["slakh"] if i["path"].startswith("omitted/")]
    assert omitted and all(i["duplicate_of"].startswith("train/") for i in omitted)


def test_bach10_test_pieces_share_no_piece_with_training(built):
    """The loader's split of the generated Bach10 (test = piece 10, as for the real set) against the
    corpus's own provenance record: no work rendered into a test piece is in a training piece, and no
    pretraining corpus contains either."""
    from transfersep.data import bach10

    out, marker = built
    split = {t.name: t.split for t in bach10.index(out / "Bach10").tracks}
    work = {i["path"]: i["work"] for i in marker["datasets"]["bach10"]["items"]}
    assert set(split) == set(work) and set(split.values()) == {"train", "test"}
    test = {work[n] for n, s in split.items() if s == "test"}
    train = {work[n] for n, s in split.items() if s == "train"}
    assert test and train and not test & train
    pretrain = {i["work"] for n in ("slakh", "musdb") for i in marker["datasets"][n]["items"]}
    assert not (test | train) & pretrain


def test_loudness_matches_bs1770_reference():
    # BS.1770: a 0 dBFS 997 Hz sine reads -3.01 LKFS in one channel, 0 LKFS in both L and R.
    sr = 48000
    sine = np.sin(2 * np.pi * 997 * np.arange(sr * 5) / sr)
    assert integrated_loudness(sine, sr) == pytest.approx(-3.01, abs=0.05)
    assert integrated_loudness(np.stack([sine, sine], axis=1), sr) == pytest.approx(0.0, abs=0.05)


def test_cache_determinism_and_rebuild(built, tmp_path):
    out, marker = built
    logs: list[str] = []
    again = corpus.build_corpus(out, "test", 0, log=logs.append)
    assert again == marker and "up to date" in logs[-1]
    # --only in a fresh folder gives the same bytes (the pool split ignores --only).
    corpus.build_corpus(tmp_path, "test", 0, only=["musdb", "bach10"], log=lambda *_: None)
    for root in ("musdb18hq", "Bach10"):
        assert _tree_hashes(tmp_path / root) == _tree_hashes(out / root)
    # A build killed while swapping folders: the record says "replacing"; a stale build dir remains.
    state = json.loads((tmp_path / corpus.MARKER).read_text())
    state["datasets"]["musdb"] = {"root": "musdb18hq", "state": "replacing"}
    (tmp_path / corpus.MARKER).write_text(json.dumps(state))
    next((tmp_path / "musdb18hq").rglob("vocals.wav")).unlink()
    (tmp_path / ".building-dead" / "musdb18hq").mkdir(parents=True)
    corpus.build_corpus(tmp_path, "test", 0, only=["musdb"], log=lambda *_: None)
    assert _tree_hashes(tmp_path / "musdb18hq") == _tree_hashes(out / "musdb18hq")
    assert not list(tmp_path.glob(".building-*"))


def test_seed_changes_the_plan():
    class Serial:
        def map(self, f, xs):
            return map(f, xs)

    from transfersep.demo import library, musdb

    plans = [musdb.plan(musdb.PRESETS["test"], seed, library.Library(Serial(), seed)) for seed in (0, 1)]
    assert [j["piece"].work for j in plans[0]] != [j["piece"].work for j in plans[1]]


def test_refuses_foreign_folder_and_bad_names(tmp_path, capsys):
    (tmp_path / "Bach10").mkdir()
    assert corpus.main([str(tmp_path), "--size", "test", "--only", "bach10"]) == 2
    assert "not made by this generator" in capsys.readouterr().err
    assert corpus.main([str(tmp_path), "--only", "medleydb"]) == 2
    assert "medleydb" in capsys.readouterr().err


def test_missing_fluidsynth_names_the_install_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert corpus.main([str(tmp_path / "out"), "--size", "test", "--only", "bach10"]) == 2
    assert "apt-get install -y fluidsynth" in capsys.readouterr().err


# what each generated set must look like to the data-inspection command (python -m transfersep.data):
# the paper's sources, and tracks in the splits the real dataset has
INSPECTED = {
    "slakh": (["bass", "drums", "piano_guitar"], ("train", "val", "test")),
    "musdb": (["accompaniment", "vocals"], ("train", "val", "test")),
    "bach10": (["violin", "clarinet", "saxophone", "bassoon"], ("train", "test")),
    # the test size renders too few takes for a validation take (the demo size has two)
    "dagstuhl": (["male", "female"], ("train", "test")),
    "remixpacks": (["snare", "kick_drum", "cymbals"], ("train", "test")),
    "librimix": (["s1", "s2"], ("train", "val", "test")),
}


@pytest.mark.parametrize("name", sorted(INSPECTED))
def test_each_generated_set_passes_the_inspection_command(built, name, capsys):
    from transfersep.data.__main__ import main as inspect_main

    out, marker = built
    root = out / marker["datasets"][name]["root"]
    assert inspect_main([name, str(root), "--summary"]) == 0, capsys.readouterr().err
    summary = json.loads(capsys.readouterr().out)
    sources, splits = INSPECTED[name]
    assert sorted(summary["sources"]) == sorted(sources)
    for split in splits:
        assert summary[split]["tracks"] > 0 and summary[split]["minutes"] > 0, (split, summary)
    # and another dataset's command refuses the folder with a one-line reason
    other = "bach10" if name != "bach10" else "dagstuhl"
    assert inspect_main([other, str(root)]) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_the_large_size_is_slakh_only_and_says_so(tmp_path, capsys):
    assert corpus.main([str(tmp_path / "out"), "--size", "large", "--only", "bach10"]) == 2
    err = capsys.readouterr().err
    assert "exists only for slakh" in err and "--only slakh" in err


@pytest.mark.slow
def test_the_large_slakh_plan_uses_each_chorale_once_and_no_downstream_piece():
    class Serial:
        def map(self, f, xs):
            return map(f, xs)

    from transfersep.demo import library, slakh

    jobs = slakh.plan(slakh.PRESETS["large"], 0, library.Library(Serial(), 0))
    cfg = slakh.PRESETS["large"]
    assert len(jobs) == cfg["train"] + cfg["validation"] + cfg["test"]
    chorales = [j["piece"].work for j in jobs if j["piece"].work not in scores.PRETRAIN_QUARTETS]
    assert len(chorales) == len(set(chorales))
    downstream = set(scores.pretrain_chorale_candidates())
    assert set(chorales) <= downstream  # candidates exclude every piece reserved for the downstream sets
