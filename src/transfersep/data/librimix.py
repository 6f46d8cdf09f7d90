"""LibriMix (Libri2Mix, Libri3Mix): mixtures of LibriSpeech utterances, optionally with WHAM! noise.

The layout its generator writes (JorisCos/LibriMix: ``generate_librimix.sh`` runs
``scripts/create_librimix_from_metadata.py`` with ``--freqs 8k 16k --modes min max --types mix_clean
mix_both mix_single``; asteroid's ``LibriMix`` dataset reads the same)::

    <root>/Libri{2,3}Mix/wav{8k,16k}/{min,max}/
        metadata/mixture_<subset>_<type>.csv    mixture_ID, [original_mixture_ID,] mixture_path,
                                                source_1_path .. source_<n>_path, [noise_path,] length
        metadata/metrics_<subset>_<type>.csv    mixture_ID, [original_mixture_ID,] source_<i>_SNR, [noise_SNR]
        <subset>/{s1,s2[,s3],mix_clean,mix_both,mix_single,noise}/<mixture_ID>.wav

- subsets: ``train-100``, ``train-360``, ``dev``, ``test`` (from LibriSpeech ``train-clean-100``,
  ``train-clean-360``, ``dev-clean``, ``test-clean``: the generator strips ``libri<n>mix_`` and
  ``-clean`` from its metadata file names); types: ``mix_clean`` = s1 + .. + sn, ``mix_both`` = that
  + noise, ``mix_single`` = s1 + noise. Generated with ``--types mix_clean`` alone, a subset holds
  only ``s1..sn`` and ``mix_clean`` (no ``noise/``). ``original_mixture_ID`` is in newer generators'
  files only.
- ``mixture_ID`` joins the LibriSpeech utterance IDs ``<speaker>-<chapter>-<utterance>`` of s1..sn
  with ``_`` (``3536-8226-0026_1673-143397-0009``); the speakers of a mixture are distinct, and a
  training utterance is used once. Files are mono WAV at 8 or 16 kHz; ``min`` cuts every file of a
  mixture to its shortest utterance, ``max`` pads them with zeros to the longest, so all files of a
  mixture have the CSV's ``length`` (samples). Loudness: each utterance at a random -33..-25 LUFS.
- The CSVs' paths are absolute paths on the machine that generated the data: the loader never
  follows them. It reads the IDs and lengths of ``mixture_<subset>_mix_clean.csv`` (else
  ``mix_both``, ``mix_single``) and finds ``<subset>/<source>/<mixture_ID>.wav`` under the root;
  without a metadata file it lists ``s1/`` (noted) and reads lengths from the headers.

Index: one track per mixture; its sources are its speakers ``s1..sn`` and, when asked for,
``noise`` (``sources: [s1, s2, noise]``; needs ``noise/``). Splits: train-100 and train-360 ->
train, dev -> val, test -> test. The mixture files are never read: the tool sums the sources.

Options: ``n_src`` 2 | 3 (Libri2Mix | Libri3Mix), ``rate`` 8k | 16k, ``mode`` min | max, ``subsets``
(a list; default every subset present). The root is the folder holding ``Libri2Mix/`` (the
generator's output folder); ``<root>`` may also be ``Libri<n>Mix`` itself.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from transfersep.data import speech
from transfersep.data.index import DatasetError, DatasetIndex, check_root, require_tracks, sorted_dirs

NAME = "librimix"
SUBSETS = {"train-100": "train", "train-360": "train", "dev": "val", "test": "test"}
TYPES = ("mix_clean", "mix_both", "mix_single")
EXPECT = "LibriMix (<root>/Libri2Mix/wav16k/min/{train-100,dev,test}/{s1,s2,mix_clean}/ and metadata/)"


def base_dir(root: Path, n_src: int, rate: str, mode: str) -> Path:
    """``<root>/Libri<n>Mix/wav<rate>/<mode>``, or a one-line error naming the folder it expected."""
    top = f"Libri{n_src}Mix"
    if (root / top).is_dir():
        mix_dir = root / top
    elif root.name == top:
        mix_dir = root
    else:
        others = [d.name for d in sorted_dirs(root) if re.fullmatch(r"Libri\dMix", d.name)]
        if re.fullmatch(r"Libri\dMix", root.name):
            others = [root.name]
        hint = f" (found {', '.join(others)}: set n_src)" if others else f" ({EXPECT})"
        raise DatasetError(f"{NAME}: expected the folder {root / top}{hint}")
    base = mix_dir / f"wav{rate}" / mode
    if not base.is_dir():
        found = sorted(str(p.relative_to(mix_dir)) for p in mix_dir.glob("wav*/*") if p.is_dir())
        hint = f" (found {', '.join(found)}: set rate and mode)" if found else ""
        raise DatasetError(f"{NAME}: expected the folder {base}{hint}")
    return base


def _metadata(base: Path, subset: str) -> Path | None:
    for t in TYPES:
        p = base / "metadata" / f"mixture_{subset}_{t}.csv"
        if p.is_file():
            return p
    return None


def index(
    root: str | Path,
    sources: Sequence[str] | None = None,
    n_src: int = 2,
    rate: str = "16k",
    mode: str = "min",
    subsets: Sequence[str] | None = None,
) -> DatasetIndex:
    """Index Libri<n_src>Mix at ``root`` (see the module docstring)."""
    root = check_root(root, NAME, EXPECT)
    n_src, rate, mode = speech.check_options(NAME, n_src, rate, mode)
    names = speech.source_names(NAME, sources, n_src, noise_ok=True)
    base = base_dir(root, n_src, rate, mode)
    hz = speech.RATES[rate]
    tracks, notes, left_out = [], [], []
    for subset, d, split in speech.subset_dirs(NAME, base, SUBSETS, subsets):
        hint = (
            ": noise/ exists only when the mixtures were generated with mix_both or mix_single; "
            "leave noise out of the sources"
            if speech.NOISE in names
            else f" (Libri{n_src}Mix has {', '.join(f's{k + 1}' for k in range(n_src))} in every subset)"
        )
        folders = speech.source_folders(NAME, d, names, hint)
        meta = _metadata(base, subset)
        if meta is None:
            ids, lengths = [p.name[:-4] for p in sorted((d / "s1").iterdir()) if p.name.endswith(".wav")], {}
            notes.append(f"{subset}: no metadata/mixture_{subset}_mix_clean.csv; mixtures listed from {subset}/s1/")
        else:
            ids, lengths = speech.read_ids(meta, NAME)
        found, missing, used = speech.mixture_tracks(NAME, ids, split, folders, hz, lengths)
        tracks += found
        left_out += missing
        notes += speech.unlisted_note(folders, used, subset)
    tracks = require_tracks(tracks, NAME, base, EXPECT)
    speakers = {p.split("-")[0] for t in tracks if t.split == "train" for p in t.name.split("_")}
    notes = speech.band_note(hz) + notes + speech.left_out_note(left_out)
    if speakers:
        notes.append(speech.speaker_note(len(speakers), n_src))
    layout = f"Libri{n_src}Mix/wav{rate}/{mode}"
    return DatasetIndex(NAME, str(root), names, tracks, layout=layout, notes=notes)
