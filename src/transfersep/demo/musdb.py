"""MUSDB18-HQ-style corpus: ``musdb18hq/{train,test}/<Artist - Title>/{mixture,drums,bass,other,vocals}.wav``.

Stereo, 44.1 kHz, 16-bit. Vocals sing the top part on a voice-like GM program (Choir Aahs 52,
Voice Oohs 53, Synth Voice 54) with instrumental bars where the voice rests; bass plays the lowest
part; other is a submix of the two inner parts on two instruments panned apart; drums are GM-kit
patterns on the excerpt's bars. ``mixture.wav`` is the exact sum of the 16-bit stems (MUSDB18-HQ's
mixture equals the stems' sum up to rounding). ``train/`` includes some of the 14 validation
track names of the ``musdb`` package, so a loader's validation list has real work to do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from transfersep.demo import drums, scores
from transfersep.demo.loudness import normalize
from transfersep.demo.render import Part, Renderer, db, mix_pcm16, write_audio

NAME, ROOT, SR = "musdb", "musdb18hq", 44100
VALIDATION = ["Actions - One Minute Smile", "Johnny Lokke - Promises & Lies", "Traffic Experiment - Sirens"]
TRAIN = [
    "Jokers, Jacks & Kings - Sea Of Leaves",
    "Actions - Devil's Words",
    "Traffic Experiment - Once More (With Feeling)",
    "Spike Mullings - Mike's Sulking",
    "A Classic Education - NightOwl",
    "Bill Chudziak - Children Of No-one",
    "Music Delta - 80s Rock",
    "St Vitus - Word Gets Around",
    "Young Griffo - Blood To Bone",
    "Hezekiah Jones - Borrowed Heart",
    "Port St Willow - Stay Even",
    "Dark Ride - Burning Bridges",
    "Night Panther - Fire",
]
TEST = [
    "The Easton Ellises (Baumi) - SDRNR",
    "M.E.R.C. Music - Knockout",
    "James Elder & Mark M Thompson - The English Actor",
    "Angels In Amplifiers - I'm Alright",
    "PR - Oh No",
    "Al James - Schoolboy Facination",
]
PRESETS = {
    "demo": dict(validation=3, train=11, test=6, seconds=(20.0, 26.0), quartet_share=0.3),
    "test": dict(validation=1, train=3, test=1, seconds=(5.0, 7.0), quartet_share=0.0),
}
VOICE = [52, 53, 54]
BASS = [32, 33, 34, 35, 38]
OTHER = [0, 1, 2, 4, 24, 25, 26, 27, 16, 19, 48, 49, 56, 61, 64, 66, 71, 88, 89]  # no 65: see slakh.OTHER
STEMS = ("drums", "bass", "other", "vocals")
LEVELS = {"vocals": -16.0, "drums": -18.0, "bass": -20.0, "other": -20.0}  # LUFS before the mix gain
TAIL_S = 1.0


def plan(cfg: dict, seed: int, lib) -> list[dict]:
    rng = np.random.default_rng([seed, 2])
    names = (
        [("train", n) for n in VALIDATION[: cfg["validation"]]]
        + [("train", n) for n in TRAIN[: cfg["train"]]]
        + [("test", n) for n in TEST[: cfg["test"]]]
    )
    n_quartet = int(round(len(names) * cfg["quartet_share"]))
    pieces = lib.chorales(NAME, len(names) - n_quartet) + lib.quartets(NAME, n_quartet)
    pieces = [pieces[i] for i in rng.permutation(len(pieces))]
    jobs = []
    for i, ((split, name), piece) in enumerate(zip(names, pieces)):
        seconds = float(rng.uniform(*cfg["seconds"]))
        bpm = scores.default_bpm(piece, rng, 76.0, 116.0)
        jobs.append(
            dict(
                split=split,
                name=name,
                piece=piece,
                seconds=seconds,
                bpm=bpm,
                start_bar=scores.choose_start(piece, seconds, bpm, rng),
                rng=[seed, 2, i],
            )
        )
    return jobs


def _vocal_line(ex: scores.Excerpt, rng: np.random.Generator) -> list:
    """The top part with rests where the voice drops out: an intro and maybe a mid-song break."""
    rest = set(range(int(rng.integers(1, 3))))
    if ex.n_bars > 6 and rng.random() < 0.5:
        rest.add(int(rng.integers(3, ex.n_bars - 1)))
    spans = [(ex.bars[b][0], ex.bars[b][0] + ex.bars[b][1]) for b in rest if b < ex.n_bars - 1]
    return [n for n in ex.parts[0] if not any(a <= n[0] < b for a, b in spans)]


def build(job: dict, root: Path, renderer: Renderer) -> dict:
    rng = np.random.default_rng(job["rng"])
    ex = scores.excerpt(job["piece"], job["start_bar"], job["seconds"], job["bpm"])
    low = np.median([p for _, _, p in ex.parts[3]]) if ex.parts[3] else 40
    pan = int(rng.integers(20, 45))
    voice = int(rng.choice(VOICE))
    parts = {
        "vocals": [
            Part("vocals", voice, scores.perform(_vocal_line(ex, rng), rng, 100, jitter_s=0.012, bars=ex.bars), pan=64)
        ],
        "bass": [
            Part(
                "bass",
                int(rng.choice(BASS)),
                scores.perform(ex.parts[3], rng, 100, transpose=-12 if low >= 50 else 0, bars=ex.bars),
                pan=64,
            )
        ],
        "drums": [Part("drums", 0, drums.pattern(ex.bars, ex.spq, rng, perc=rng.random() < 0.3), is_drum=True)],
        "other": [
            Part(f"other{k}", int(p), scores.perform(ex.parts[k], rng, 85, bars=ex.bars), pan=pp)
            for k, p, pp in zip((1, 2), rng.choice(OTHER, 2, replace=False), (64 - pan, 64 + pan))
        ],
    }
    n = int(round((ex.duration + TAIL_S) * SR))
    audio = renderer.render_groups([parts[s] for s in STEMS], ex.bpm, SR, n)  # a process per stem
    raw = [normalize(x, SR, LEVELS[s] + rng.uniform(-2, 2)) for s, x in zip(STEMS, audio)]
    q, mix, _ = mix_pcm16(raw, db(-1.0))
    d = root / job["split"] / job["name"]
    for stem, pcm in zip(STEMS, q):
        write_audio(d / f"{stem}.wav", pcm, SR)
    write_audio(d / "mixture.wav", mix, SR)
    return dict(
        path=f"{job['split']}/{job['name']}",
        work=ex.work,
        bars=[ex.start_bar, ex.n_bars],
        bpm=round(ex.bpm, 3),
        seconds=n / SR,
        voice_program=voice,
    )
