"""Tiny copies of the real dataset layouts (names, case, sample rates, channels, quirks of the real datasets).

Every stem is distinct noise (seeded by its path), so a 16 kHz excerpt can be traced back to its
file and time by cross-correlation. A few seconds per file keeps the tests fast.
"""

from __future__ import annotations

import shutil
import subprocess
import zlib
from pathlib import Path

import numpy as np
import soundfile as sf
import yaml

MUSDB_STEMS = ("mixture", "drums", "bass", "other", "vocals")


def noise(key: str, seconds: float, sr: int, channels: int = 1, level: float = 0.1) -> np.ndarray:
    """[frames, channels] distinct noise for ``key`` (soundfile's layout)."""
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    x = rng.standard_normal((int(round(seconds * sr)), channels)) * level
    return np.clip(x, -0.99, 0.99).astype(np.float32)


def write(path: Path, data: np.ndarray, sr: int, subtype: str = "PCM_16") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data, sr, subtype=subtype)
    return path


def musdb_hq(root: Path, seconds: float = 3.0) -> Path:
    songs = {
        "train": [
            "Actions - One Minute Smile",
            "Johnny Lokke - Promises & Lies",
            "A Classic Education - NightOwl",
            "Jay's Song (Live.)",
            "Bobby Nobody - Stitch Up",
        ],
        "test": ["PR - Oh No", "Al James - Schoolboy Facination"],
    }
    for split, names in songs.items():
        for name in names:
            stems = {s: noise(f"musdb/{name}/{s}", seconds, 44100, 2) for s in MUSDB_STEMS[1:]}
            stems["mixture"] = sum(stems.values())
            for s, x in stems.items():
                write(root / split / name / f"{s}.wav", x, 44100)
    return root


MP4_SONGS = ("Johnny Lokke - Promises & Lies", "A Classic Education - NightOwl", "PR - Oh No")


def musdb_stem_mp4(hq_root: Path, root: Path) -> Path:
    """MUSDB18 .stem.mp4 (five AAC streams) made with ffmpeg from three songs of an HQ tree."""
    for split in ("train", "test"):
        for song in sorted(p for p in (hq_root / split).iterdir() if p.name in MP4_SONGS):
            out = root / split / f"{song.name}.stem.mp4"
            out.parent.mkdir(parents=True, exist_ok=True)
            cmd = ["ffmpeg", "-v", "error", "-y", "-threads", "1"]
            for s in MUSDB_STEMS:
                cmd += ["-i", str(song / f"{s}.wav")]
            for k in range(5):
                cmd += ["-map", f"{k}:a"]
            cmd += ["-c:a", "aac", "-b:a", "256k", str(out)]
            subprocess.run(cmd, check=True)
    return root


def slakh_metadata(stems: dict[str, dict]) -> dict:
    return {
        "UUID": "0" * 32,
        "audio_dir": "stems",
        "midi_dir": "MIDI",
        "lmd_midi_dir": "lmd/x.mid",
        "normalization_factor": -13.0,
        "normalized": True,
        "overall_gain": 0.5,
        "target_peak": -1.0,
        "stems": stems,
    }


def slakh_stem(
    inst_class: str, program: int, rendered: bool = True, is_drum: bool = False, audio_rendered: bool | None = None
) -> dict:
    d = {
        "audio_rendered": rendered if audio_rendered is None else audio_rendered,
        "inst_class": inst_class,
        "is_drum": is_drum,
        "midi_program_name": inst_class,
        "midi_saved": True,
        "plugin_name": "sfz_piano.nkm" if rendered else "None",
        "program_num": program,
    }
    if rendered:
        d["integrated_loudness"] = -20.5
    return d


# per track: stem id -> (inst_class, program, rendered, is_drum); note the gaps in ids
SLAKH_TRACKS = {
    "Track00001": {
        "S00": ("Piano", 0, True, False),
        "S01": ("Bass", 33, True, False),
        "S03": ("Drums", 128, True, True),
        "S04": ("Guitar", 26, True, False),
        "S05": ("Strings", 48, True, False),
        "S07": ("Guitar", 29, False, False),
    },
    "Track00002": {
        "S00": ("Bass", 34, True, False),
        "S02": ("Drums", 128, True, True),
        "S04": ("Synth Pad", 89, True, False),
        "S06": ("Sound effects", 121, True, False),
    },  # no piano/guitar
    "Track01501": {
        "S00": ("Piano", 1, True, False),
        "S01": ("Bass", 32, True, False),
        "S02": ("Drums", 128, True, True),
    },
    "Track01876": {
        "S00": ("Guitar", 24, True, False),
        "S01": ("Bass", 35, True, False),
        "S03": ("Drums", 128, True, True),
    },
    "Track01877": {"S00": ("Organ", 16, True, False), "S01": ("Bass", 33, True, False)},
}


def slakh_track(
    d: Path, stems: dict, sr: int = 44100, ext: str = "flac", seconds: float = 3.0, trust_flag: bool = True
) -> None:
    meta = {}
    for sid, (cls, prog, rendered, drum) in stems.items():
        meta[sid] = slakh_stem(cls, prog, rendered, drum, audio_rendered=None if trust_flag else False)
        if rendered:
            write(d / "stems" / f"{sid}.{ext}", noise(f"slakh/{d.name}/{sid}", seconds, sr), sr)
            (d / "MIDI").mkdir(parents=True, exist_ok=True)
            (d / "MIDI" / f"{sid}.mid").write_bytes(b"MThd")
    (d / "metadata.yaml").write_text(yaml.safe_dump(slakh_metadata(meta), sort_keys=False))
    write(d / f"mix.{ext}", noise(f"slakh/{d.name}/mix", seconds, sr), sr)
    (d / "all_src.mid").write_bytes(b"MThd")


def slakh_redux(root: Path, seconds: float = 3.0) -> Path:
    where = {
        "Track00001": "train",
        "Track00002": "train",
        "Track01501": "validation",
        "Track01876": "test",
        "Track01877": "omitted",
    }
    for name, stems in SLAKH_TRACKS.items():
        slakh_track(root / where[name] / name, stems, seconds=seconds)
    return root


def slakh_original(root: Path, seconds: float = 3.0) -> Path:
    for name, stems in SLAKH_TRACKS.items():
        slakh_track(root / name, stems, seconds=seconds)
    return root


def babyslakh(root: Path, n: int = 5, seconds: float = 3.0) -> Path:
    for k in range(1, n + 1):
        stems = {"S00": ("Bass", 33, True, False), "S01": ("Drums", 128, True, True), "S02": ("Piano", 0, True, False)}
        slakh_track(root / f"Track{k:05d}", stems, sr=16000, ext="wav", seconds=seconds, trust_flag=False)
    return root


BACH10_PIECES = ["01-AchGottundHerr", "02-AchLiebenChristen", "05-DieNacht", "10-NunBitten"]


def bach10(root: Path, seconds: float = 3.0) -> Path:
    for piece in BACH10_PIECES:
        d = root / piece
        parts = {
            inst: noise(f"bach10/{piece}/{inst}", seconds, 44100)
            for inst in ("violin", "clarinet", "saxphone", "bassoon")
        }
        for inst, x in parts.items():
            write(d / f"{piece}-{inst}.wav", x, 44100)
        write(d / f"{piece}.wav", sum(parts.values()), 44100)
        for ext in (".mid", ".txt", ".asl", "-GTF0s.mat", "-GTNotes.mat"):
            (d / f"{piece}{ext}").write_bytes(b"x")
    (root / "Code").mkdir(parents=True, exist_ok=True)
    (root / "readme.txt").write_text("Bach10 dataset")
    return root


# take -> singer files (part+number, mic); full-choir takes: one DYN per part, others LRX/HSM only
DAGSTUHL_TAKES = {
    "DCS_LI_FullChoir_Take01": [
        "S1_DYN",
        "S1_LRX",
        "S2_LRX",
        "A2_DYN",
        "A1_LRX",
        "T2_DYN",
        "T1_HSM",
        "B2_DYN",
        "B1_LRX",
    ],
    "DCS_LI_QuartetA_Take01": ["S2_DYN", "S2_HSM", "A1_DYN", "T1_DYN", "T1_LRX", "B1_DYN"],
    "DCS_LI_QuartetA_Take02": ["S2_DYN", "A1_DYN", "T1_DYN", "B1_DYN", "B1_LRX"],
    "DCS_LI_QuartetB_Take01": ["S1_DYN", "A2_DYN", "T2_DYN", "B2_DYN"],
    "DCS_LI_QuartetB_Take02": ["S1_DYN", "A2_DYN", "T2_HSM", "B2_DYN"],  # tenor without DYN: not eligible
    "DCS_TP_QuartetA_Take01": ["S2_DYN", "A1_DYN", "T1_DYN", "B1_DYN"],
    "DCS_TP_QuartetB_Take01": ["S1_DYN", "A2_DYN", "T2_DYN", "B2_DYN"],
    "DCS_LI_Basses_Take01": ["B1_DYN", "B2_DYN", "B3_LRX"],
    "DCS_SE_QuartetA_Intervals": ["S2_DYN", "A1_DYN", "T1_DYN", "B1_DYN"],  # exercise: never used
}


def dagstuhl(root: Path, seconds: float = 3.0) -> Path:
    audio = root / "audio_wav_22050_mono"
    for take, singers in DAGSTUHL_TAKES.items():
        for s in singers:
            write(audio / f"{take}_{s}.wav", noise(f"dcs/{take}_{s}", seconds, 22050), 22050)
        for extra in ("Stereo_STM", "Stereo_STL", "Stereo_STR", "StereoReverb_STM"):
            write(audio / f"{take}_{extra}.wav", noise(f"dcs/{take}_{extra}", seconds, 22050), 22050)
    write(audio / "DCS_SE_QuartetA_Intervals_Piano_SPL.wav", noise("dcs/piano", seconds, 22050), 22050)
    for ann in ("annotations_csv_F0_CREPE", "annotations_csv_F0_PYIN", "annotations_csv_beat"):
        (root / ann).mkdir(parents=True, exist_ok=True)
        (root / ann / "DCS_LI_QuartetA_Take01_S2_DYN.csv").write_text("0.0,220.0\n")
    return root


REMIX_SONGS = {
    "Artist A - Song One (Remix Pack)": ["Kick 1.wav", "SNARE_top.wav", "HiHat Open.wav", "Bass.wav", "Vox Lead.wav"],
    "Artist B - Track Two": ["kick.wav", "Snare.wav", "Crash.wav", "Ride.wav", "Synth.wav"],
    "Artist C - Three": ["BD.wav", "Snr Roll.wav", "OH.wav", "Kick+Snare Bus.wav"],
    "Artist D - Four": ["Kick Sub.wav", "snare 2.wav", "Hats.wav"],
    "Artist E - Five": ["KICK.wav", "Clap.wav", "Cymbal.wav"],
    "Artist F - Six": ["Kick.wav", "Snare.wav", "Hi Hat.wav"],
}


def remixpacks(root: Path, seconds: float = 3.0) -> Path:
    for k, (song, files) in enumerate(REMIX_SONGS.items()):
        sr, ch = (48000, 2) if k % 2 else (44100, 2)  # producers export at 44.1 or 48 kHz, stereo
        for f in files:
            write(root / song / f, noise(f"remix/{song}/{f}", seconds, sr, ch), sr)
    return root


def copytree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def librimix(root: Path, **options) -> Path:
    """LibriMix as its generator writes it (speechtrees.librimix: the speech layouts live there)."""
    import speechtrees

    return speechtrees.librimix(root, **options)


def wsj0mix(root: Path, **options) -> Path:
    """WSJ0-mix as its generators write it (speechtrees.wsj0mix)."""
    import speechtrees

    return speechtrees.wsj0mix(root, **options)
