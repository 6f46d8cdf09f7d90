"""Drum patterns on the General MIDI kit (channel 10), laid on a score excerpt's bar grid.

Patterns follow the metre (simple metres: 8th/16th hats; compound x/8: hats in threes; pickup
bars play only their tail), with per-track style (straight, half-time, four-on-the-floor), kick
syncopations, ghost snares, crashes on phrase starts, fills at phrase ends and humanised timing
and velocity.
"""

from __future__ import annotations

import numpy as np

KICK, KICK2, SIDESTICK, SNARE, SNARE2 = 36, 35, 37, 38, 40
HAT, PEDAL_HAT, OPEN_HAT, CRASH, RIDE, RIDE_BELL, CRASH2 = 42, 44, 46, 49, 51, 53, 57
TOMS = (50, 48, 47, 45, 43, 41)  # high to low
CLAP, TAMBOURINE, CABASA, MARACAS = 39, 54, 69, 70

# GM percussion notes per class; the Remixpacks-style stems are rendered one class at a time.
CLASS_NOTES = {
    "kick": (KICK2, KICK),
    "snare": (SIDESTICK, SNARE, SNARE2),
    "cymbals": (HAT, PEDAL_HAT, OPEN_HAT, CRASH, RIDE, RIDE_BELL, CRASH2),
    "toms": TOMS,
    "perc": (CLAP, TAMBOURINE, CABASA, MARACAS),
}

Hit = tuple[float, float, int, int]  # (start_s, end_s, note, velocity)


def _grid(num: int, den: int) -> tuple[int, int]:
    """(beats per bar, subdivisions per beat) for a time signature."""
    if den == 8 and num % 3 == 0:
        return max(1, num // 3), 3
    if den == 8:
        return num, 1
    return num, 2


def pattern(
    bars: list[tuple[float, float, int, int]], spq: float, rng: np.random.Generator, perc: bool = False
) -> list[Hit]:
    """Hits for every bar in ``bars`` ((start_s, length_s, num, den)); ``spq`` = seconds/quarter.

    ``perc`` adds a hand-percussion layer (claps, tambourine, shakers)."""
    style = rng.choice(["straight", "halftime", "four"], p=[0.6, 0.2, 0.2])
    ride = rng.random() < 0.3
    sixteenths = spq > 0.6 and rng.random() < 0.5
    kick_var = rng.uniform(0.1, 0.4)
    ghost = rng.uniform(0.0, 0.15)
    hits: list[tuple[float, int, int]] = []

    def add(t: float, note: int, vel: float) -> None:
        hits.append((t, note, int(np.clip(vel + rng.integers(-6, 7), 1, 127))))

    for i, (t0, length, num, den) in enumerate(bars):
        beats, sub = _grid(num, den)
        full = num * 4.0 / den * spq
        beat = full / beats
        if sub == 2 and sixteenths:
            sub = 4
        step = beat / sub
        shift = full - length if length < full - 1e-6 else 0.0  # pickup: only the bar's tail sounds
        phrase_end = (i % 4 == 3) and i > 0 and rng.random() < 0.4
        for b in range(beats):
            for s in range(sub):
                pos = b * beat + s * step
                if pos < shift - 1e-6:
                    continue
                t = t0 + pos - shift
                last_beat = b == beats - 1
                if phrase_end and last_beat:  # fill: snare and toms down the kit
                    note = SNARE if s % 2 == 0 else TOMS[min(len(TOMS) - 1, s + (b % 2) * 2)]
                    add(t, note, 100)
                    continue
                accent = 96 if s == 0 else 72
                if i % 4 == 0 and b == 0 and s == 0 and shift == 0.0:
                    add(t, CRASH if rng.random() < 0.8 else CRASH2, 105)
                elif ride:
                    add(t, RIDE_BELL if (s == 0 and rng.random() < 0.1) else RIDE, accent - 6)
                else:
                    open_hat = last_beat and s == sub - 1 and rng.random() < 0.3
                    add(t, OPEN_HAT if open_hat else HAT, accent - 8)
                if s == 0:
                    kick = b == 0 or style == "four" or (beats == 4 and b == 2 and style != "halftime")
                    snare = (
                        (beats >= 2 and b % 2 == 1 and style != "halftime")
                        or (style == "halftime" and beats >= 3 and b == beats // 2)
                        or (beats == 3 and b == 2 and style != "halftime")
                    )
                    if kick:
                        add(t, KICK, 110)
                    if snare:
                        add(t, SNARE, 104)
                    if not kick and not snare and beats == 1 and sub == 1:
                        add(t, SNARE, 95)
                else:
                    if rng.random() < kick_var * (0.5 if s != sub - 1 else 1.0):
                        add(t, KICK, 92)
                    if rng.random() < ghost:
                        add(t, SNARE, 38)
                if perc:
                    if s == 0 and b % 2 == 1:
                        add(t, CLAP, 90)
                    add(t, TAMBOURINE if s % 2 else CABASA, 60)
    jitter = rng.normal(0.0, 0.004, size=len(hits))
    return sorted((max(0.0, t + j), max(0.0, t + j) + 0.12, note, vel) for (t, note, vel), j in zip(hits, jitter))


def split(hits: list[Hit], cls: str) -> list[Hit]:
    """Only the hits whose GM note belongs to ``cls`` (a key of CLASS_NOTES)."""
    notes = set(CLASS_NOTES[cls])
    return [h for h in hits if h[2] in notes]
