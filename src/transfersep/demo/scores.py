"""Real scores from the music21 corpus, and the fixed, disjoint assignment of works to datasets.

Assignment (fixed, not seed-dependent, so downstream material never leaks into pretraining):

- Bach10: the ten chorales Bach10 itself uses (``BACH10_WORKS``), matched by title to BWV
  numbers (music21's chorale list confirms eight titles; 03 is BWV 274 "Christe, der du bist Tag
  und Licht", and 09 takes BWV 363 of the two harmonisations of "Jesus Christus, unser Heiland").
- Dagstuhl ChoirSet: piece ``LI`` sings BWV 386, piece ``TP`` sings BWV 365 (``DAGSTUHL_WORKS``).
- Remixpacks: bass and synth lines from Mozart's quartets K. 80 and K. 155 (``REMIX_WORKS``).
- Pretraining (Slakh-style and MUSDB-style): every other four-part Bach chorale, and the quartet
  movements in ``PRETRAIN_QUARTETS`` (Haydn Op. 1/1 and 74/1, Mozart K. 156 and 458, three
  Beethoven movements). The seed shuffles this pool; even positions go to Slakh, odd to MUSDB
  (quartets: two of every three to Slakh), so the two pretraining corpora are disjoint as well.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

BACH10_WORKS = {
    "01-AchGottundHerr": "bach/bwv255",
    "02-AchLiebenChristen": "bach/bwv256",
    "03-ChristederdubistTagundLicht": "bach/bwv274",
    "04-ChristeDuBeistand": "bach/bwv275",
    "05-DieNacht": "bach/bwv296",
    "06-DieSonne": "bach/bwv297",
    "07-HerrGott": "bach/bwv326",
    "08-FuerDeinenThron": "bach/bwv327",
    "09-Jesus": "bach/bwv363",
    "10-NunBitten": "bach/bwv385",
}
DAGSTUHL_WORKS = {"LI": "bach/bwv386", "TP": "bach/bwv365"}
REMIX_WORKS = [f"mozart/k80/movement{i}" for i in (1, 2, 3, 4)] + [f"mozart/k155/movement{i}" for i in (1, 2, 3)]
# Movements whose parse takes music21 over ~2.5 s (K. 458 i and iv, Op. 74/1 iv, Op. 59/2 ii and
# the long Beethoven files) are left out: they would dominate the corpus generation time.
PRETRAIN_QUARTETS = (
    [f"haydn/opus1no1/movement{i}" for i in range(1, 6)]
    + [f"haydn/opus74no1/movement{i}" for i in range(1, 4)]
    + [f"mozart/k156/movement{i}" for i in range(1, 5)]
    + [f"mozart/k458/movement{i}" for i in (2, 3)]
    + ["beethoven/opus18no1/movement3", "beethoven/opus59no2/movement3", "beethoven/opus59no3/movement3"]
)
DOWNSTREAM_WORKS = frozenset(list(BACH10_WORKS.values()) + list(DAGSTUHL_WORKS.values()) + REMIX_WORKS)


@dataclass
class Bar:
    offset: float  # quarter notes from the piece's start
    length: float  # actual length in quarters (a pickup bar is shorter than its signature)
    num: int
    den: int


@dataclass
class Piece:
    """A score reduced to what rendering needs. Part i's notes are (onset_q, dur_q, midi pitch)."""

    work: str
    parts: list[list[tuple[float, float, int]]]
    bars: list[Bar]
    tempo_q: float | None  # quarter-note bpm of the first metronome mark, if any

    @property
    def length_q(self) -> float:
        return self.bars[-1].offset + self.bars[-1].length if self.bars else 0.0


def pretrain_chorale_candidates() -> list[str]:
    """Every Bach file in the music21 corpus (sorted) not reserved for a downstream set."""
    from music21 import corpus

    names = sorted(
        {
            f"bach/{Path(p).stem}"
            for p in corpus.getComposer("bach")
            if Path(p).parent.name == "bach" and Path(p).suffix in (".mxl", ".xml", ".krn")
        }
    )
    return [n for n in names if n not in DOWNSTREAM_WORKS]


def load_piece(work: str) -> Piece:
    """Parse ``work`` (a music21 corpus path like 'bach/bwv255') into a Piece."""
    from music21 import corpus, meter, stream, tempo

    score = corpus.parse(work)
    parts = []
    for p in score.parts:
        notes = []
        p.stripTies(inPlace=True)  # the parsed score is ours: no deep copy
        for n in p.flatten().notes:
            ql = float(n.quarterLength)
            if n.duration.isGrace or ql <= 0:
                continue
            for pitch in n.pitches:
                notes.append((float(n.offset), ql, int(pitch.midi)))
        parts.append(sorted(notes))
    bars, ts = [], meter.TimeSignature("4/4")
    if score.parts:
        for m in score.parts[0].getElementsByClass(stream.Measure):
            ts = m.timeSignature or ts
            length = float(m.highestTime) or float(ts.barDuration.quarterLength)
            bars.append(Bar(float(m.offset), length, int(ts.numerator), int(ts.denominator)))
    mark = score.recurse().getElementsByClass(tempo.MetronomeMark).first()
    bpm = mark.getQuarterBPM() if mark is not None else None  # playback-only marks count too
    bpm = float(bpm) if bpm else None
    return Piece(work=work, parts=parts, bars=bars, tempo_q=bpm)


def is_four_part(piece: Piece, min_bars: int = 6) -> bool:
    return len(piece.parts) == 4 and len(piece.bars) >= min_bars and all(len(p) >= 8 for p in piece.parts)


@dataclass
class Excerpt:
    """Bars of a piece at a tempo, in seconds from the excerpt's start.

    ``parts[i]`` holds (start_s, dur_s, pitch); ``bars`` holds (start_s, length_s, num, den)."""

    work: str
    start_bar: int
    n_bars: int
    bpm: float
    parts: list[list[tuple[float, float, int]]]
    bars: list[tuple[float, float, int, int]]
    duration: float

    @property
    def spq(self) -> float:
        return 60.0 / self.bpm


def default_bpm(piece: Piece, rng: np.random.Generator, lo: float = 66.0, hi: float = 100.0) -> float:
    """The score's own tempo when it has one (kept within reason), else a draw in [lo, hi]."""
    if piece.tempo_q:
        return float(np.clip(piece.tempo_q * rng.uniform(0.95, 1.05), 50.0, 180.0))
    den = piece.bars[0].den if piece.bars else 4
    scale = {2: 1.6, 8: 1.4}.get(den, 1.0)  # alla breve / compound metres move faster in quarters
    return float(rng.uniform(lo, hi) * scale)


def choose_start(piece: Piece, seconds: float, bpm: float, rng: np.random.Generator) -> int:
    """A random start bar from which ``seconds`` of music remain (bar 0 if the piece is short)."""
    need_q = seconds * bpm / 60.0
    ok = [i for i, b in enumerate(piece.bars) if piece.length_q - b.offset >= need_q]
    return int(rng.choice(ok)) if ok else 0


def excerpt(piece: Piece, start_bar: int, seconds: float, bpm: float, at_least: bool = False) -> Excerpt:
    """Whole bars from ``start_bar`` lasting as close to ``seconds`` as bar lines allow (with
    ``at_least``: the fewest bars lasting ``seconds`` or more, where the piece is that long)."""
    spq = 60.0 / bpm
    chosen: list[Bar] = []
    for b in piece.bars[start_bar:]:
        if chosen:
            before = (chosen[-1].offset + chosen[-1].length - chosen[0].offset) * spq
            after = (b.offset + b.length - chosen[0].offset) * spq
            if (before >= seconds) if at_least else (after - seconds > seconds - before):
                break
        chosen.append(b)
    if not chosen:
        raise ValueError(f"{piece.work}: no bars from bar {start_bar}")
    q0, q1 = chosen[0].offset, chosen[-1].offset + chosen[-1].length
    parts = []
    for notes in piece.parts:
        parts.append(
            [((on - q0) * spq, (min(on + d, q1) - on) * spq, pitch) for on, d, pitch in notes if q0 <= on < q1]
        )
    bars = [((b.offset - q0) * spq, b.length * spq, b.num, b.den) for b in chosen]
    return Excerpt(piece.work, start_bar, len(chosen), bpm, parts, bars, (q1 - q0) * spq)


def clip(ex: Excerpt, seconds: float) -> Excerpt:
    """The first ``seconds`` of an excerpt: later notes dropped, notes sounding at the cut shortened."""
    if ex.duration <= seconds:
        return ex
    parts = [[(on, min(d, seconds - on), p) for on, d, p in notes if on < seconds] for notes in ex.parts]
    bars = [(o, min(length, seconds - o), num, den) for o, length, num, den in ex.bars if o < seconds]
    return Excerpt(ex.work, ex.start_bar, len(bars), ex.bpm, parts, bars, seconds)


def perform(
    notes: list[tuple[float, float, int]],
    rng: np.random.Generator,
    velocity: int,
    jitter_s: float = 0.0,
    legato: float = 0.97,
    transpose: int = 0,
    bars: list[tuple[float, float, int, int]] | None = None,
) -> list[tuple[float, float, int, int]]:
    """Score notes -> MIDI notes (start, end, pitch, velocity): slight detaché so repeated pitches
    re-attack, downbeat accents, optional timing jitter."""
    downbeats = np.array([b[0] for b in bars]) if bars else np.array([])
    out = []
    for start, dur, pitch in notes:
        v = velocity + rng.integers(-7, 8)
        if downbeats.size and np.min(np.abs(downbeats - start)) < 1e-3:
            v += 8
        t = max(0.0, start + (rng.normal(0.0, jitter_s) if jitter_s else 0.0))
        end = t + max(0.05, dur * legato)
        out.append((t, end, int(np.clip(pitch + transpose, 0, 127)), int(np.clip(v, 1, 127))))
    return out


def merge(*note_lists: list) -> list:
    return sorted([n for notes in note_lists for n in notes])
