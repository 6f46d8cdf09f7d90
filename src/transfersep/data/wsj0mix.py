"""WSJ0-2mix / WSJ0-3mix: the speaker-separation corpus deep clustering was introduced on
(Hershey, Chen, Le Roux & Watanabe, 2016), mixtures of WSJ0 read speech.

The layout the generators write (MERL's original MATLAB scripts; mpariente/pywsj0-mix's
``generate_wsjmix.py`` reproduces them; asteroid's ``wsj0-mix`` recipe reads it)::

    <root>/{2,3}speakers/wav{8k,16k}/{min,max}/{tr,cv,tt}/{mix,s1,s2[,s3]}/<name>.wav

- ``<root>`` is the generator's output folder (``wsj0-mix`` by default); ``tr`` / ``cv`` / ``tt``
  hold 20 000 / 5 000 / 3 000 mixtures (2 speakers at 8 kHz: about 30 / 10 / 5 hours); tr and cv
  draw their speakers from WSJ0 ``si_tr_s``, tt from ``si_dt_05`` and ``si_et_05`` (speakers unseen
  in training).
- ``<name>`` joins each speaker's WSJ0 utterance ID (8 characters, the first 3 the speaker) with its
  SNR in dB: ``01aa010b_0.97482_209a010p_-0.97482.wav`` (the MATLAB and Python generators print
  the SNRs with different precision). The same name is the mixture in ``mix/`` and each speaker's
  signal in ``s1/``, ``s2/`` (, ``s3/``); ``min`` cuts all of them to the shortest utterance, ``max``
  pads to the longest. Mono 16-bit WAV at 8 kHz (the benchmark's rate) or 16 kHz.
- There is no metadata in the output (the ``mix_<n>_spk_<split>.txt`` lists belong to the scripts):
  the mixtures are the files of ``s1/``, their lengths the headers'.

Index: one track per mixture, its speakers ``s1..sn`` as sources (no noise track). Splits: tr ->
train, cv -> val, tt -> test. Options: ``n_src`` 2 | 3, ``rate`` 8k | 16k, ``mode`` min | max,
``subsets`` (default every one present). ``<root>`` may also be ``<n>speakers`` itself.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from transfersep.data import speech
from transfersep.data.index import DatasetError, DatasetIndex, check_root, require_tracks, sorted_dirs

NAME = "wsj0mix"
SUBSETS = {"tr": "train", "cv": "val", "tt": "test"}
EXPECT = "WSJ0-mix (<root>/2speakers/wav8k/min/{tr,cv,tt}/{mix,s1,s2}/)"


def base_dir(root: Path, n_src: int, rate: str, mode: str) -> Path:
    """``<root>/<n>speakers/wav<rate>/<mode>``, or a one-line error naming the folder it expected."""
    top = f"{n_src}speakers"
    if (root / top).is_dir():
        spk_dir = root / top
    elif root.name == top:
        spk_dir = root
    else:
        others = [d.name for d in sorted_dirs(root) if re.fullmatch(r"\dspeakers", d.name)]
        if re.fullmatch(r"\dspeakers", root.name):
            others = [root.name]
        hint = f" (found {', '.join(others)}: set n_src)" if others else f" ({EXPECT})"
        raise DatasetError(f"{NAME}: expected the folder {root / top}{hint}")
    base = spk_dir / f"wav{rate}" / mode
    if not base.is_dir():
        found = sorted(str(p.relative_to(spk_dir)) for p in spk_dir.glob("wav*/*") if p.is_dir())
        hint = f" (found {', '.join(found)}: set rate and mode)" if found else ""
        raise DatasetError(f"{NAME}: expected the folder {base}{hint}")
    return base


def index(
    root: str | Path,
    sources: Sequence[str] | None = None,
    n_src: int = 2,
    rate: str = "8k",
    mode: str = "min",
    subsets: Sequence[str] | None = None,
) -> DatasetIndex:
    """Index the <n_src>-speaker WSJ0 mixtures at ``root`` (see the module docstring)."""
    root = check_root(root, NAME, EXPECT)
    n_src, rate, mode = speech.check_options(NAME, n_src, rate, mode)
    names = speech.source_names(NAME, sources, n_src, noise_ok=False)
    base = base_dir(root, n_src, rate, mode)
    hz = speech.RATES[rate]
    tracks, left_out = [], []
    hint = f" ({n_src}speakers has mix, {', '.join(names)} in every subset)"
    for _subset, d, split in speech.subset_dirs(NAME, base, SUBSETS, subsets):
        folders = speech.source_folders(NAME, d, names, hint)
        ids = [p.name[:-4] for p in sorted(folders["s1"].iterdir()) if p.name.endswith(".wav")]
        found, missing, _ = speech.mixture_tracks(NAME, ids, split, folders, hz)
        tracks += found
        left_out += missing
    tracks = require_tracks(tracks, NAME, base, EXPECT)
    speakers = {utt[:3] for t in tracks if t.split == "train" for utt in t.name.split("_")[0::2]}
    notes = speech.band_note(hz) + speech.left_out_note(left_out)
    if speakers:
        notes.append(speech.speaker_note(len(speakers), n_src))
    return DatasetIndex(NAME, str(root), names, tracks, layout=f"{n_src}speakers/wav{rate}/{mode}", notes=notes)
