"""Dagstuhl-ChoirSet-style set: ``DagstuhlChoirSet_V1.2.3/audio_wav_22050_mono/`` (mono, 22 050 Hz,
16-bit) beside empty annotation folders.

Songs ``LI`` and ``TP`` (two chorales, ``scores.DAGSTUHL_WORKS``) are sung in several takes and
settings; ``SE`` takes are cadence exercises with piano. Every singer is rendered on their own on a
voice-like GM program (Choir Aahs / Voice Oohs / Synth Voice) with a personal detune and timing;
microphones are derived from that voice: ``DYN`` (handheld: the singer plus crosstalk of the
others at about -26 dB), ``HSM`` (headset: high-passed, less crosstalk), ``LRX`` (larynx
contact: muffled). Take-level files: ``Stereo_STM/STL/STR`` (room microphones: the whole choir
panned, with room reverb), ``StereoReverb_STM``, and ``Piano_SPL/SPR`` for exercises with piano.

The take filter has real work: a quartet take whose tenor has no DYN microphone, a Basses take,
full-choir takes where only one singer per part has a DYN microphone, and SE exercise takes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from transfersep.demo import scores
from transfersep.demo.render import Part, Renderer, db, highpass, lowpass, room, to_pcm16, write_audio

NAME, ROOT, SR = "dagstuhl", "DagstuhlChoirSet_V1.2.3", 22050
AUDIO = "audio_wav_22050_mono"
ANNOTATIONS = (
    "annotations_csv_F0_CREPE",
    "annotations_csv_F0_PYIN",
    "annotations_csv_F0_manual",
    "annotations_csv_beat",
    "annotations_csv_scorerepresentation",
)
# (piece, setting, take, part lacking a DYN microphone or None)
_TEST = [
    ("LI", "QuartetA", "Take01", None),
    ("LI", "QuartetB", "Take01", "T"),
    ("LI", "FullChoir", "Take01", None),
    ("LI", "Basses", "Take01", None),
    ("TP", "QuartetA", "Take01", None),
    ("SE", "QuartetA", "Cadences", None),
]
_DEMO = _TEST + [
    ("LI", "QuartetA", "Take02", None),
    ("LI", "QuartetB", "Take02", None),
    ("TP", "QuartetB", "Take01", None),
    ("TP", "FullChoir", "Take01", None),
    ("TP", "QuartetA", "Take02", "S"),
    ("SE", "FullChoir", "Intonation", None),
]
# Demo takes are 8 s: three training takes (~28 s) are as small against the demo's model as the
# real ChoirSet's training takes are against the paper's (see the regime table in docs/demo.md).
PRESETS = {"demo": dict(takes=_DEMO, seconds=8.0, choir=3), "test": dict(takes=_TEST, seconds=5.0, choir=2)}
# GM voice programs: Choir Aahs, Voice Oohs, Synth Voice
VOICES, VOICE_P = [52, 53, 54], [0.45, 0.45, 0.1]
CADENCE = [(72, 67, 64, 48), (72, 69, 65, 53), (71, 67, 62, 55), (72, 67, 64, 48)]  # I IV V I
TAIL_S = 1.2


def plan(cfg: dict, seed: int, lib) -> list[dict]:
    pieces = dict(zip(scores.DAGSTUHL_WORKS, lib.pieces(list(scores.DAGSTUHL_WORKS.values()))))
    jobs = []
    for i, (piece, setting, take, no_dyn) in enumerate(cfg["takes"]):
        jobs.append(
            dict(
                piece=piece,
                setting=setting,
                take=take,
                no_dyn=no_dyn,
                choir=cfg["choir"],
                score=pieces.get(piece),
                seconds=cfg["seconds"],
                rng=[seed, 4, i],
                tempo_rng=[seed, 4, 100 + list(scores.DAGSTUHL_WORKS).index(piece)]
                if piece in pieces
                else [seed, 4, 99],
            )
        )
    return jobs


def _singers(
    setting: str, choir: int, rng: np.random.Generator, no_dyn: str | None
) -> list[tuple[str, int, list[str]]]:
    """(part, singer number, microphones) for each singer of a take."""
    out = []
    if setting.startswith("Quartet"):
        n = 1 if setting == "QuartetA" else 2
        for part in "SATB":
            mics = (["HSM"] if part == no_dyn else ["DYN", "HSM"]) + (["LRX"] if rng.random() < 0.5 else [])
            out.append((part, n, mics))
    elif setting == "Basses":
        out = [("B", k, ["DYN", "HSM"]) for k in range(1, choir + 1)]
    else:  # FullChoir: only one singer per part holds a dynamic microphone
        for part in "SATB":
            dyn = int(rng.integers(1, choir + 1))
            for k in range(1, choir + 1):
                mics = ["DYN", "HSM"] if k == dyn else ["HSM"] + (["LRX"] if rng.random() < 0.3 else [])
                out.append((part, k, mics))
    return out


def _exercise(seconds: float, bpm: float) -> scores.Excerpt:
    """SE: an I-IV-V-I cadence in half notes, repeated a semitone higher each time."""
    spq, parts, bars, t, shift = 60.0 / bpm, [[], [], [], []], [], 0.0, 0
    while t + 8 * spq <= max(seconds, 8 * spq) + 1e-9:
        for c, chord in enumerate(CADENCE):
            for k in range(4):
                parts[k].append((t + c * 2 * spq, 2 * spq, chord[k] + shift))
            if c % 2 == 0:
                bars.append((t + c * 2 * spq, 4 * spq, 4, 4))
        t, shift = t + 8 * spq, shift + 1
    return scores.Excerpt("exercise:cadence", 0, len(bars), bpm, parts, bars, t)


def build(job: dict, root: Path, renderer: Renderer) -> dict:
    rng = np.random.default_rng(job["rng"])
    bpm = float(np.random.default_rng(job["tempo_rng"]).uniform(66.0, 80.0)) * rng.uniform(0.96, 1.04)
    ex = (
        _exercise(job["seconds"], bpm) if job["score"] is None else scores.excerpt(job["score"], 0, job["seconds"], bpm)
    )
    n = int(round((ex.duration + TAIL_S) * SR))
    take = f"DCS_{job['piece']}_{job['setting']}_{job['take']}"
    singers = _singers(job["setting"], job["choir"], rng, job["no_dyn"])
    groups = []
    for part, k, _ in singers:
        line = ex.parts["SATB".index(part)]
        notes = scores.perform(line, rng, int(rng.integers(70, 95)), jitter_s=0.02, legato=0.93, bars=ex.bars)
        groups.append(
            [Part(f"{part}{k}", int(rng.choice(VOICES, p=VOICE_P)), notes, bend_cents=float(rng.normal(0.0, 8.0)))]
        )
    if job["piece"] == "SE":
        chords = [(s, s + d * 0.95, p, 70) for k in range(4) for s, d, p in ex.parts[k]]
        groups.append([Part("piano", 0, chords)])
    rendered = renderer.render_groups(groups, ex.bpm, SR, n)  # one process per singer (and piano)
    voices = [x.mean(axis=1) for x in rendered[: len(singers)]]
    choir = np.sum(voices, axis=0)
    files: dict[str, np.ndarray] = {}
    for (part, k, mics), x in zip(singers, voices):
        others = choir - x
        for mic in mics:
            if mic == "DYN":
                y = highpass(x + db(-26) * others, SR, 80.0)
            elif mic == "HSM":
                y = highpass(x + db(-32) * others, SR, 150.0)
            else:
                y = lowpass(x, SR, 1200.0, order=4) * 1.5
            files[f"{take}_{part}{k}_{mic}.wav"] = y
    pans = rng.uniform(0.2, 0.8, size=len(voices))
    left = np.sum([v * np.sqrt(1 - p) for v, p in zip(voices, pans)], axis=0)
    right = np.sum([v * np.sqrt(p) for v, p in zip(voices, pans)], axis=0)
    if job["piece"] == "SE":
        pl, pr = rendered[-1].T
        files[f"{take}_Piano_SPL.wav"], files[f"{take}_Piano_SPR.wav"] = pl, pr
        left, right = left + 0.5 * pl, right + 0.5 * pr
    files[f"{take}_Stereo_STL.wav"] = room(left, SR, 1.1, 0.6, rng)
    files[f"{take}_Stereo_STR.wav"] = room(right, SR, 1.1, 0.6, rng)
    files[f"{take}_Stereo_STM.wav"] = room(left + right, SR, 1.1, 0.6, rng)
    files[f"{take}_StereoReverb_STM.wav"] = room(left + right, SR, 2.4, 1.5, rng)
    # One gain per take (mic levels stay comparable), then small per-file trims.
    gain = 0.9 / max(float(np.abs(y).max()) for y in files.values())
    audio = root / AUDIO
    for fname, y in sorted(files.items()):
        write_audio(audio / fname, to_pcm16(y * gain * db(rng.uniform(-2.0, 0.0))), SR)
    return dict(path=take, work=ex.work, bars=[0, ex.n_bars], bpm=round(ex.bpm, 3), seconds=n / SR, files=sorted(files))


def finish(root: Path, cfg: dict, seed: int) -> None:
    for a in ANNOTATIONS:
        (root / a).mkdir(parents=True, exist_ok=True)
    (root / AUDIO).mkdir(parents=True, exist_ok=True)
