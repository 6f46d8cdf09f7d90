"""Stems of one song must be equally long; an empty file is never a stem.

``check_lengths(index, policy)`` runs on every index a loader builds (``registry.build_index``):

- a file with zero frames raises ``DatasetError`` naming it (always: silence is no recording);
- stems of one track whose lengths differ by more than ``TOLERANCE_S`` raise ``DatasetError``
  naming the files and their lengths (``policy="error"``, the default), or, when asked with the
  dataset option ``stem_lengths``, are padded with silence to the longest (``pad``, what mixing does
  anyway) or cut to the shortest (``trim``). Either choice adds a note to the index, which the
  data-inspection command prints and a run's end-of-run summary repeats.

Differences up to ``TOLERANCE_S`` are accepted silently: compressed stems (MUSDB18's AAC streams)
carry up to a codec frame of encoder padding, which says nothing about the music.
"""

from __future__ import annotations

from dataclasses import replace

from transfersep.data.index import AudioRef, DatasetError, DatasetIndex, Track, config_key

POLICIES = ("error", "pad", "trim")
TOLERANCE_S = 0.05
OPTION = "stem_lengths"


def _files(t: Track) -> list[AudioRef]:
    return [r for refs in t.sources.values() for r in refs]


def _label(r: AudioRef) -> str:
    return r.path + (f" (stream {r.stream})" if r.stream is not None else "")


def check_lengths(index: DatasetIndex, policy: str | None = "error") -> DatasetIndex:
    """The index, checked (and with ``trim``, stems cut to each track's shortest); see the module doc."""
    policy = policy or "error"
    key = config_key(index.dataset, OPTION)
    if policy not in POLICIES:
        raise DatasetError(f"{key}={policy!r}: choose one of {', '.join(POLICIES)}")
    changed: list[str] = []
    for t in index.tracks:
        files = _files(t)
        for r in files:
            if r.frames <= 0:
                raise DatasetError(f"{_label(r)}: holds no audio (0 frames); remove it from {t.name} or re-export it")
        if len(files) < 2:
            continue
        secs = [r.seconds for r in files]
        if max(secs) - min(secs) <= TOLERANCE_S:
            continue
        if policy == "error":
            parts = ", ".join(f"{_label(r)} {r.seconds:.3f} s" for r in sorted(files, key=lambda r: r.seconds))
            raise DatasetError(
                f"{index.dataset}: stems of {t.name} differ in length ({parts}); fix the files, or "
                f"set {key}=pad (silence after the shorter) or {key}=trim (cut to the shortest) "
                f"(`transfersep data`: --option {OPTION}=pad)"
            )
        changed.append(f"{t.name} ({min(secs):.2f}-{max(secs):.2f} s)")
        if policy == "trim":
            shortest = min(secs)
            t.sources = {
                k: [replace(r, frames=min(r.frames, int(shortest * r.sample_rate))) for r in refs]
                for k, refs in t.sources.items()
            }
    if changed:
        how = "padded with silence to the longest" if policy == "pad" else "cut to the shortest"
        index.notes.append(
            f"{OPTION}={policy}: stems of {len(changed)} track(s) differ in length and were {how}: "
            + ", ".join(changed[:10])
            + (" ..." if len(changed) > 10 else "")
        )
    return index
