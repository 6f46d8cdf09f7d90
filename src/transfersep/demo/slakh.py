"""Slakh2100 flac-redux-style corpus: ``slakh2100_flac_redux/{train,validation,test,omitted}/TrackNNNNN``.

Each track is an excerpt of a chorale or quartet movement arranged per track: bass (the lowest
part), GM-kit drums on the excerpt's bars, and the upper parts drawn onto piano (sometimes two
voices as chords), guitar and other classes; sometimes a pad doubling the harmony. As in Slakh,
every stem is loudness-normalised (to ``normalization_factor`` LUFS), then all stems share one
gain (``overall_gain``) that brings the mix to ``target_peak`` dBFS; ``mix.flac`` is the exact sum
of the 16-bit stems. ``integrated_loudness`` is the raw render's BS.1770 loudness.

Quirks (the first training tracks get them for sure, later tracks at random): a gap in the stem
ids, a stem with ``plugin_name: None`` (MIDI only: no audio file, no integrated_loudness),
tracks lacking guitar or piano. ``omitted/`` holds re-arrangements of training excerpts
(duplicates, like the real folder), never to be used.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from transfersep.demo import drums, scores
from transfersep.demo.loudness import integrated_loudness
from transfersep.demo.render import Part, Renderer, db, mix_pcm16, write_audio, write_midi

NAME, ROOT, SR = "slakh", "slakh2100_flac_redux", 44100
PRESETS = {
    "demo": dict(train=100, validation=6, test=4, omitted=2, seconds=(20.0, 28.0), quartet_share=0.35),
    "test": dict(train=3, validation=1, test=1, omitted=1, seconds=(5.0, 7.0), quartet_share=0.2),
    # the shipped CPU model's corpus (`make model-cpu`): every four-part chorale of Slakh's share once,
    # quartet movements at other bars to fill it, 2.6 times the demo's training audio
    "large": dict(train=260, validation=8, test=4, omitted=0, seconds=(20.0, 28.0), quartet_share=0.36),
}
SLAKH_CLASSES = [
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
]  # GM family order
PIANO, GUITAR = [0, 1, 2, 4, 5], [24, 25, 26, 27, 28, 29]
BASS = [32, 33, 34, 35, 36, 38, 39]
# Not alto sax (65): TimGM6mb has no sample for its E4, a note the inner voices sing often.
OTHER = [
    40,
    41,
    42,
    44,
    45,
    48,
    49,
    50,
    56,
    57,
    60,
    61,
    64,
    66,
    68,
    71,
    72,
    73,
    16,
    17,
    19,
    80,
    81,
    82,
    88,
    89,
    90,
    91,
    8,
    11,
    12,
]
PAD = [48, 49, 50, 89, 91]
# Sound Effects / Ethnic / Percussive / Sound effects programs, only ever in an unrendered stem
UNRENDERED = [97, 99, 104, 105, 110, 113, 114, 120, 122]
FORCED_QUIRKS = [
    dict(gap=True, unrendered=True, piano=True, guitar=False),
    dict(piano=False),
    dict(piano=True, guitar=True),
]
NORMALIZATION_LUFS, TARGET_PEAK_DB, TAIL_S = -13.0, -1.0, 1.0


def inst_class(program: int, is_drum: bool = False) -> str:
    return "Drums" if is_drum else SLAKH_CLASSES[program // 8]


def plan(cfg: dict, seed: int, lib) -> list[dict]:
    rng = np.random.default_rng([seed, 1])
    n_unique = cfg["train"] + cfg["validation"] + cfg["test"]
    n_quartet = int(round(n_unique * cfg["quartet_share"]))
    pieces = lib.chorales(NAME, n_unique - n_quartet) + lib.quartets(NAME, n_quartet)
    order = rng.permutation(len(pieces))
    pieces = [pieces[i] for i in order]
    n_total = n_unique + cfg["omitted"]
    ids = rng.permutation(n_total) + 1  # redux keeps original ids, scattered over the splits
    splits = ["train"] * cfg["train"] + ["validation"] * cfg["validation"] + ["test"] * cfg["test"]
    jobs = []
    for i, (piece, split) in enumerate(zip(pieces, splits)):
        seconds = float(rng.uniform(*cfg["seconds"]))
        bpm = scores.default_bpm(piece, rng, 72.0, 112.0)
        quirks = FORCED_QUIRKS[i] if i < len(FORCED_QUIRKS) else {}
        jobs.append(
            dict(
                split=split,
                track=f"Track{ids[i]:05d}",
                piece=piece,
                start_bar=scores.choose_start(piece, seconds, bpm, rng),
                seconds=seconds,
                bpm=bpm,
                quirks=quirks,
                rng=[seed, 1, i],
                duplicate_of=None,
            )
        )
    for k in range(cfg["omitted"]):
        src = jobs[int(rng.integers(cfg["train"]))]
        jobs.append(
            {
                **src,
                "split": "omitted",
                "track": f"Track{ids[n_unique + k]:05d}",
                "quirks": {},
                "rng": [seed, 1, n_unique + k],
                "duplicate_of": f"{src['split']}/{src['track']}",
            }
        )
    return jobs


def _arrange(ex: scores.Excerpt, rng: np.random.Generator, quirks: dict) -> list[tuple[Part, bool]]:
    """(part, rendered) for every stem of the track, in MIDI instrument order."""
    upper, bass = ex.parts[:3], ex.parts[3]
    stems: list[tuple[Part, bool]] = []

    def add(program: int, notes: list, vel: int, rendered: bool = True, transpose: int = 0) -> None:
        if not notes:  # a quartet part resting through the whole excerpt: no instrument at all
            return
        perf = scores.perform(notes, rng, vel, transpose=transpose, bars=ex.bars)
        stems.append((Part(inst_class(program), program, perf), rendered))

    stems.append((Part("Drums", 0, drums.pattern(ex.bars, ex.spq, rng), is_drum=True), True))
    low = np.median([p for _, _, p in bass]) if bass else 40
    add(int(rng.choice(BASS)), bass, int(rng.integers(90, 110)), transpose=-12 if low >= 50 else 0)
    voices = [upper[i] for i in rng.permutation(3)]
    if quirks.get("piano", rng.random() < 0.75):
        take = 2 if rng.random() < 0.5 else 1
        add(int(rng.choice(PIANO)), scores.merge(*voices[:take]), int(rng.integers(80, 100)))
        voices = voices[take:]
    if quirks.get("guitar", rng.random() < 0.65):
        notes = voices.pop(0) if voices else upper[0]
        add(int(rng.choice(GUITAR)), notes, int(rng.integers(80, 100)), transpose=0 if voices else -12)
    for v in voices:
        add(int(rng.choice(OTHER)), v, int(rng.integers(75, 100)))
    if rng.random() < 0.35:
        add(int(rng.choice(PAD)), scores.merge(*upper), int(rng.integers(55, 75)))
    if quirks.get("unrendered", rng.random() < 0.2):
        add(int(rng.choice(UNRENDERED)), upper[int(rng.integers(3))], 80, rendered=False)
    return [stems[i] for i in rng.permutation(len(stems))]


def build(job: dict, root: Path, renderer: Renderer) -> dict:
    rng = np.random.default_rng(job["rng"])
    ex = scores.excerpt(job["piece"], job["start_bar"], job["seconds"], job["bpm"])
    stems = _arrange(ex, rng, job["quirks"])
    gap_at = int(rng.integers(1, len(stems))) if job["quirks"].get("gap", rng.random() < 0.3) else -1
    ids = [f"S{k + (k >= gap_at >= 0):02d}" for k in range(len(stems))]
    d = root / job["split"] / job["track"]
    n = int(round((ex.duration + TAIL_S) * SR))
    write_midi(d / "all_src.mid", [p for p, _ in stems], ex.bpm, n / SR)
    meta_stems, midis = {}, {}
    for sid, (part, rendered) in zip(ids, stems):
        midi = write_midi(d / "MIDI" / f"{sid}.mid", [part], ex.bpm, n / SR)
        program = 128 if part.is_drum else part.program
        meta_stems[sid] = dict(
            audio_rendered=rendered,
            inst_class=inst_class(part.program, part.is_drum),
            is_drum=part.is_drum,
            midi_program_name="Drums" if part.is_drum else _gm_name(program),
            midi_saved=True,
            plugin_name=Path(renderer.soundfont).name if rendered else "None",
            program_num=program,
        )
        if rendered:
            midis[sid] = midi
    raw = {}  # each stem is rendered from its own MIDI/SNN.mid, in its own fluidsynth process
    for sid, x in zip(midis, renderer.render_many(list(midis.values()), SR, n)):
        x = x.mean(axis=1)
        loud = integrated_loudness(x, SR)
        meta_stems[sid]["integrated_loudness"] = loud
        raw[sid] = x * db(NORMALIZATION_LUFS - loud)
    q, mix, gain = mix_pcm16(list(raw.values()), db(TARGET_PEAK_DB))
    for sid, pcm in zip(raw, q):
        write_audio(d / "stems" / f"{sid}.flac", pcm, SR)
    write_audio(d / "mix.flac", mix, SR)
    meta = dict(
        UUID=rng.bytes(16).hex(),
        audio_dir="stems",
        midi_dir="MIDI",
        lmd_midi_dir=f"music21/corpus/{job['piece'].work}.mxl",
        normalization_factor=NORMALIZATION_LUFS,
        normalized=True,
        overall_gain=float(gain),
        target_peak=TARGET_PEAK_DB,
        stems=meta_stems,
    )
    (d / "metadata.yaml").write_text(yaml.safe_dump(meta, sort_keys=True, default_flow_style=False))
    return dict(
        path=f"{job['split']}/{job['track']}",
        work=ex.work,
        bars=[ex.start_bar, ex.n_bars],
        bpm=round(ex.bpm, 3),
        seconds=n / SR,
        duplicate_of=job["duplicate_of"],
        stems={sid: m["inst_class"] for sid, m in meta_stems.items()},
        unrendered=[sid for sid, m in meta_stems.items() if not m["audio_rendered"]],
    )


def _gm_name(program: int) -> str:
    import pretty_midi

    return pretty_midi.program_to_instrument_name(program)
