"""Remixpacks-style set: ``remixpacks/{train,test}/<Song>/<producer-named stem>.wav``.

Each song is a drum pattern on the GM kit over bass and synth lines from a Mozart quartet
excerpt (``scores.REMIX_WORKS``). Drums are rendered one class at a time (kick 35/36, snare
37/38/40, cymbals 42/44/46/49/51/53/57), exported under producer-style names, sometimes as two
files of one class (``Kick In`` + ``Kick Out``, ``SNR Top`` + ``SNR Bottom``, ``Hi-Hat`` + ``Ride``).
Stems a snare/kick/cymbals mapping must ignore: ``Toms``, ``Perc & FX`` (claps, tambourine,
shakers), bass and synth stems. No mixture file (remix packs ship stems). Songs alternate
44.1 kHz/16-bit and 48 kHz/24-bit stereo, as practitioners' folders do.

Every stem name this generator can write, with the class it holds, is in ``STEM_CLASSES``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from transfersep.demo import drums, scores
from transfersep.demo.loudness import normalize
from transfersep.demo.render import Part, Renderer, highpass, lowpass, write_audio

NAME, ROOT = "remixpacks", "remixpacks"
SONGS = [
    "Afterglow",
    "Night Drive (Stems)",
    "Paper & Glue",
    "Don't Look Back",
    "Saint-Lazare",
    "Cold Fusion v2",
    "Run It Back 124bpm",
    "Ritual 3.0",
    "Hello, Stranger",
    "Low Tide",
    "Glass Houses (Remix Contest)",
    "Mr. Blue",
]
PRESETS = {"demo": dict(train=7, test=3, seconds=(14.0, 20.0)), "test": dict(train=2, test=1, seconds=(5.0, 6.0))}
KICKS = [["Kick_01"], ["Kick In", "Kick Out"], ["KICK"], ["Kick_01", "Kick Sub"]]
SNARES = [["SNR Top", "SNR Bottom"], ["Snare"], ["Snare_02"], ["SNR Top"]]
CYMBALS = [["Cymbals & Hats"], ["Hi-Hat", "Ride"], ["HH Closed", "Crash"], ["Cymbals"]]
BASSES, LEADS = ["Bass", "Sub Bass", "BASS_DI"], ["Lead Synth", "Pluck_01"]
PADS = ["Synth Pad", "Keys (Chords)"]
STEM_CLASSES = {
    **{n: "kick_drum" for g in KICKS for n in g},
    **{n: "snare" for g in SNARES for n in g},
    **{n: "cymbals" for g in CYMBALS for n in g},
    **{n: None for n in BASSES + LEADS + PADS + ["Toms", "Perc & FX"]},
}
HATS = {drums.HAT, drums.PEDAL_HAT, drums.OPEN_HAT}
FORMATS = [(44100, "PCM_16"), (48000, "PCM_24")]


def plan(cfg: dict, seed: int, lib) -> list[dict]:
    rng = np.random.default_rng([seed, 5])
    n = cfg["train"] + cfg["test"]
    works = [scores.REMIX_WORKS[i] for i in rng.permutation(len(scores.REMIX_WORKS))]
    pieces = lib.pieces([works[i % len(works)] for i in range(n)])  # parse only what is used
    songs = [SONGS[i] for i in rng.permutation(len(SONGS))[:n]]
    jobs = []
    for i, (song, piece) in enumerate(zip(songs, pieces)):
        seconds = float(rng.uniform(*cfg["seconds"]))
        bpm = scores.default_bpm(piece, rng, 84.0, 124.0)
        sr, subtype = FORMATS[i % 2]
        jobs.append(
            dict(
                split="train" if i < cfg["train"] else "test",
                song=song,
                piece=piece,
                seconds=seconds,
                bpm=bpm,
                start_bar=scores.choose_start(piece, seconds, bpm, rng),
                sr=sr,
                subtype=subtype,
                rng=[seed, 5, i],
            )
        )
    return jobs


def _pick(rng: np.random.Generator, options: list):
    return options[int(rng.integers(len(options)))]


def build(job: dict, root: Path, renderer: Renderer) -> dict:
    rng = np.random.default_rng(job["rng"])
    sr = job["sr"]
    ex = scores.excerpt(job["piece"], job["start_bar"], job["seconds"], job["bpm"])
    n = int(round((ex.duration + 0.5) * sr))
    has_toms, has_perc = rng.random() < 0.5, rng.random() < 0.4
    hits = drums.pattern(ex.bars, ex.spq, rng, perc=has_perc)
    if not has_toms:  # no tom stem in this pack: the fills stay on the snare
        hits = [(s, e, drums.SNARE if p in drums.TOMS else p, v) for s, e, p, v in hits]

    def kit(notes: list) -> list[Part]:
        return [Part("kit", 0, notes, is_drum=True)]

    cym = drums.split(hits, "cymbals")
    kicks, snares, cymbals = _pick(rng, KICKS), _pick(rng, SNARES), _pick(rng, CYMBALS)
    groups = {"kick": kit(drums.split(hits, "kick")), "snare": kit(drums.split(hits, "snare"))}
    if len(cymbals) == 2:  # e.g. Hi-Hat + Ride: hats in one file, ride and crashes in the other
        groups[cymbals[0]] = kit([h for h in cym if h[2] in HATS])
        groups[cymbals[1]] = kit([h for h in cym if h[2] not in HATS])
    else:
        groups[cymbals[0]] = kit(cym)
    if has_toms and drums.split(hits, "toms"):
        groups["Toms"] = kit(drums.split(hits, "toms"))
    if has_perc:
        groups["Perc & FX"] = kit(drums.split(hits, "perc"))
    low = np.median([p for _, _, p in ex.parts[3]]) if ex.parts[3] else 40
    bass = scores.perform(ex.parts[3], rng, 100, transpose=-12 if low >= 50 else 0)
    groups[_pick(rng, BASSES)] = [Part("bass", int(rng.choice([33, 34, 38, 39])), bass)]
    lead = scores.perform(ex.parts[0], rng, 90)
    pan = int(rng.integers(40, 88))
    groups[_pick(rng, LEADS)] = [Part("lead", int(rng.choice([80, 81, 84])), lead, pan=pan)]
    groups[_pick(rng, PADS)] = [
        Part("pad", int(rng.choice([4, 5, 88, 89])), scores.perform(ex.parts[1], rng, 70), pan=40),
        Part("pad2", 89, scores.perform(ex.parts[2], rng, 70), pan=88),
    ]
    rendered = renderer.render_groups(list(groups.values()), ex.bpm, sr, n)  # a process per stem
    audio = {k: normalize(x, sr, -20.0 + rng.uniform(-3, 3)) for k, x in zip(groups, rendered) if np.any(x)}
    kick, snare = audio.pop("kick", None), audio.pop("snare", None)
    stems: dict[str, np.ndarray] = {}
    for name in kicks if kick is not None else []:  # a second microphone: a filtered copy
        stems[name] = {
            "Kick Out": lowpass(kick, sr, 250.0) * 1.4,
            "Kick Sub": lowpass(kick, sr, 90.0, order=4) * 2.0,
        }.get(name, kick)
    for name in snares if snare is not None else []:
        stems[name] = highpass(snare, sr, 2000.0) * 0.6 if name == "SNR Bottom" else snare
    stems.update(audio)
    gain = min(1.0, 0.9 / max(float(np.abs(v).max()) for v in stems.values()))
    d = root / job["split"] / job["song"]
    for stem, x in stems.items():
        write_audio(d / f"{stem}.wav", x * gain, sr, subtype=job["subtype"])
    return dict(
        path=f"{job['split']}/{job['song']}",
        work=ex.work,
        bars=[ex.start_bar, ex.n_bars],
        bpm=round(ex.bpm, 3),
        seconds=n / sr,
        sample_rate=sr,
        stems={k: STEM_CLASSES[k] for k in sorted(stems)},
    )
