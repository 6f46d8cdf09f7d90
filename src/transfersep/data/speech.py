"""What the speech-separation corpora (LibriMix, WSJ0-mix) share: one track per mixture, its
speakers as sources, the rate / length-mode folders, and the notes every such index carries.

A mixture's speakers ``s1``, ``s2`` (, ``s3``) are its sources. Deep clustering is permutation-free,
so a slot's name only says which file the audio comes from, never who speaks: ``s1`` of one mixture
and ``s1`` of another are different people. Dynamic mixing (``train_mixing: incoherent``) draws each
slot from an independently chosen mixture and time, so every training item pairs utterances the
corpus never mixed. LibriMix adds the WHAM! noise of ``mix_both`` as one more source, ``noise``.

Files at 8 kHz (``wav8k``) are resampled to 16 kHz by the cache like every other file; nothing
above 4 kHz exists in them, and the index says so (``band_note``).
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from transfersep.audio import SAMPLE_RATE
from transfersep.data.index import AudioRef, DatasetError, DatasetIndex, Track, config_key, probe

RATES = {"8k": 8000, "16k": 16000}
MODES = ("min", "max")
N_SRC = (2, 3)
NOISE = "noise"
SPEAKER_RE = re.compile(r"^s([1-9])$")
MAX_NAMED = 3  # a note names this many of the files it counts


def is_speech_source(name: str) -> bool:
    """A speaker slot (s1, s2, s3) or the noise track: the sources a speech corpus serves."""
    return bool(SPEAKER_RE.match(name)) or name == NOISE


def check_options(dataset: str, n_src: object, rate: object, mode: object) -> tuple[int, str, str]:
    """``(n_src, rate, mode)`` as the folders spell them, or a one-line DatasetError."""
    if n_src not in N_SRC or isinstance(n_src, bool):
        raise DatasetError(f"{dataset}: {config_key(dataset, 'n_src')}={n_src!r}: expected 2 or 3")
    rate = str(rate).lower()
    if rate in ("8000", "16000"):
        rate = f"{int(rate) // 1000}k"
    if rate not in RATES:
        raise DatasetError(f"{dataset}: {config_key(dataset, 'rate')}={rate!r}: expected 8k or 16k")
    if mode not in MODES:
        raise DatasetError(f"{dataset}: {config_key(dataset, 'mode')}={mode!r}: expected min or max")
    return int(n_src), rate, str(mode)


def source_names(dataset: str, sources: Sequence[str] | None, n_src: int, noise_ok: bool) -> list[str]:
    """The sources of every track: all speakers s1..s<n_src> (a mixture without one of its
    speakers is not that mixture) and, where the corpus has it, ``noise``."""
    speakers = [f"s{k + 1}" for k in range(n_src)]
    if not sources:
        return speakers
    names = list(sources)
    unknown = [s for s in names if not is_speech_source(s)]
    if unknown or len(set(names)) != len(names):
        raise DatasetError(
            f"{dataset}: sources {names}: a speech corpus serves the speakers {', '.join(speakers)}"
            + (" and noise" if noise_ok else "")
        )
    if NOISE in names and not noise_ok:
        raise DatasetError(f"{dataset}: has no noise track; leave noise out of {config_key(dataset, 'sources')}")
    if sorted(s for s in names if s != NOISE) != speakers:
        extra = ",noise" if NOISE in names else ""
        raise DatasetError(
            f"{dataset}: n_src={n_src} mixes {len(speakers)} speakers: set "
            f"{config_key(dataset, 'sources')}=[{','.join(speakers)}{extra}] (got {names})"
        )
    return names


def subset_dirs(
    dataset: str, base: Path, known: Mapping[str, str], subsets: Sequence[str] | None
) -> list[tuple[str, Path, str]]:
    """``(subset, folder, split)`` of the subsets to read: those asked for (each must exist), or
    every known subset present (at least one)."""
    if subsets is not None:
        if isinstance(subsets, str):
            subsets = [subsets]
        bad = [s for s in subsets if s not in known]
        if bad:
            raise DatasetError(
                f"{dataset}: {config_key(dataset, 'subsets')} names {bad}; the subsets are {', '.join(known)}"
            )
        for s in subsets:
            if not (base / s).is_dir():
                raise DatasetError(f"{dataset}: expected the folder {base / s} (subset {s} asked for)")
        return [(s, base / s, known[s]) for s in subsets]
    found = [(s, base / s, split) for s, split in known.items() if (base / s).is_dir()]
    if not found:
        first = next(iter(known))
        raise DatasetError(f"{dataset}: expected the folder {base / first} (subsets: {', '.join(known)}); none found")
    return found


def source_folders(dataset: str, subset_dir: Path, names: Sequence[str], hint: str = "") -> dict[str, Path]:
    """Each source's folder in a subset, resolved once; a missing one stops with its path."""
    out = {}
    for s in names:
        d = subset_dir / s
        if not d.is_dir():
            raise DatasetError(f"{dataset}: expected the folder {d}{hint}")
        out[s] = d.resolve()
    return out


def read_ids(path: Path, dataset: str) -> tuple[list[str], dict[str, int]]:
    """Mixture IDs (in file order) and, when the file has a ``length`` column, their lengths."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DatasetError(f"{dataset}: cannot read {path}: {e}") from e
    if rows and "mixture_ID" not in rows[0]:
        raise DatasetError(f"{dataset}: {path} has no mixture_ID column (its columns: {', '.join(rows[0])})")
    ids = [r["mixture_ID"] for r in rows]
    lengths: dict[str, int] = {}
    for r in rows:
        if r.get("length") not in (None, ""):
            try:
                lengths[r["mixture_ID"]] = int(float(r["length"]))
            except ValueError as e:
                what = f"length {r['length']!r} of {r['mixture_ID']}"
                raise DatasetError(f"{dataset}: {path}: {what} is no number") from e
    return ids, lengths


def mixture_tracks(
    dataset: str,
    ids: Iterable[str],
    split: str,
    folders: Mapping[str, Path],
    rate: int,
    lengths: Mapping[str, int] | None = None,
) -> tuple[list[Track], list[str], set[str]]:
    """One track per mixture ID: ``(tracks, IDs left out for a missing file, the IDs' file names)``.

    Every file of a mixture has the mixture's length (the generators cut or pad them all alike), so
    lengths come from ``lengths`` (the metadata's ``length`` column) or else from one header per
    mixture; the first mixture's files are all probed, checking rate and channels against the
    folder. A file shorter than its length is caught when the cache decodes it."""
    listing = {s: set(os.listdir(d)) for s, d in folders.items()}
    tracks, left_out, used = [], [], set()
    first = True
    for mid in ids:
        name = f"{mid}.wav"
        used.add(name)
        if not all(name in listing[s] for s in folders):
            left_out.append(f"{split}/{mid}: no {', '.join(s for s in folders if name not in listing[s])} file")
            continue
        if first:
            refs = {s: probe(d / name) for s, d in folders.items()}
            for r in refs.values():
                if r.sample_rate != rate or r.channels != 1:
                    raise DatasetError(
                        f"{dataset}: {r.path} is {r.sample_rate} Hz, {r.channels} channel(s); files under "
                        f"wav{rate // 1000}k are {rate} Hz mono: is the root the corpus it claims to be?"
                    )
            frames = max(r.frames for r in refs.values())
            first = False
        else:
            frames = lengths.get(mid) if lengths else None
            if frames is None:
                frames = probe(next(iter(folders.values())) / name).frames
        sources = {s: [AudioRef(str(d / name), rate, 1, int(frames))] for s, d in folders.items()}
        tracks.append(Track(mid, split, sources, corpus=dataset))
    return tracks, left_out, used


def band_note(rate: int) -> list[str]:
    if rate >= SAMPLE_RATE:
        return []
    return [
        f"wav{rate // 1000}k: {rate} Hz audio resampled to {SAMPLE_RATE} Hz; the band stops at "
        f"{rate // 2000} kHz (the bins above it are empty in every item)"
    ]


def speaker_note(n_speakers: int, n_src: int) -> str:
    # each of the n(n-1)/2 pairs of slots holds the same speaker with probability ~1/n_speakers
    every = max(1, round(n_speakers / (n_src * (n_src - 1) / 2)))
    return (
        f"{n_speakers} speakers in the training subsets; dynamic mixing (train_mixing: incoherent) draws each "
        f"slot from an independent mixture, so about 1 item in {every} holds one speaker twice"
    )


def left_out_note(left_out: Sequence[str]) -> list[str]:
    if not left_out:
        return []
    shown = "; ".join(left_out[:MAX_NAMED]) + ("; ..." if len(left_out) > MAX_NAMED else "")
    return [f"{len(left_out)} mixtures left out for a missing file ({shown})"]


def unlisted_note(folders: Mapping[str, Path], used: set[str], subset: str) -> list[str]:
    extra = sorted({f for d in folders.values() for f in os.listdir(d) if f.endswith(".wav")} - used)
    if not extra:
        return []
    return [f"{subset}: {len(extra)} files not in the metadata, ignored (e.g. {extra[0]})"]


def band_limit_hz(index: DatasetIndex) -> int | None:
    """Half the lowest sample rate of the index's files when it is below the tool's 16 kHz (8-kHz
    speech: 4000): above it every item is empty, whatever the model does."""
    rates = {r.sample_rate for t in index.tracks for refs in t.sources.values() for r in refs}
    low = min(rates, default=SAMPLE_RATE)
    return low // 2 if low < SAMPLE_RATE else None
