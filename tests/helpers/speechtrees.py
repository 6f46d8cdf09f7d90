"""Tiny copies of the speech-separation layouts (datatrees.py re-exports them), as their generators
write them: JorisCos/LibriMix's create_librimix_from_metadata.py and pywsj0-mix's generate_wsjmix.py.

Every file is distinct noise (datatrees.noise, seeded by its path). All files of a mixture share its
length (min mode: the shortest utterance), as the generators cut or pad them alike.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from datatrees import noise, write

GENERATING_MACHINE = "/home/someone/LibriMix"  # the CSVs hold the generating machine's absolute paths


def librispeech_ids(n_src: int, k: int, subset: str) -> list[str]:
    """Utterance IDs <speaker>-<chapter>-<utterance> of distinct speakers (disjoint per subset)."""
    base = {"train-100": 100, "train-360": 400, "dev": 700, "test": 900}[subset]
    return [f"{base + (k + j) % 7 * 11 + j}-{1000 + k}-{k * 3 + j:04d}" for j in range(n_src)]


def librimix(
    root: Path,
    n_src: int = 2,
    rate: str = "16k",
    mode: str = "min",
    counts: dict[str, int] | None = None,
    types: tuple[str, ...] = ("mix_clean",),
) -> Path:
    """``root/Libri<n>Mix/wav<rate>/<mode>/<subset>/...`` and its ``metadata/`` CSVs; ``types``
    beyond mix_clean add the noise track (the generator's ``--types``)."""
    sr = {"8k": 8000, "16k": 16000}[rate]
    base = root / f"Libri{n_src}Mix" / f"wav{rate}" / mode
    noisy = types != ("mix_clean",)
    for subset, n in (counts or {"train-100": 4, "dev": 1, "test": 1}).items():
        rows: dict[str, list[dict]] = {t: [] for t in types}
        for k in range(n):
            mid = "_".join(librispeech_ids(n_src, k, subset))
            seconds = 1.5 + 0.25 * (k % 3)
            srcs = [noise(f"librimix/{subset}/{mid}/s{j + 1}", seconds, sr) for j in range(n_src)]
            for j, x in enumerate(srcs):
                write(base / subset / f"s{j + 1}" / f"{mid}.wav", x, sr)
            nz = noise(f"librimix/{subset}/{mid}/noise", seconds, sr, level=0.03)
            if noisy:
                write(base / subset / "noise" / f"{mid}.wav", nz, sr)
            far = f"{GENERATING_MACHINE}/Libri{n_src}Mix/wav{rate}/{mode}/{subset}"
            for t in types:
                parts = {"mix_clean": srcs, "mix_both": [*srcs, nz], "mix_single": [srcs[0], nz]}[t]
                write(base / subset / t / f"{mid}.wav", np.clip(sum(parts), -1, 1), sr)
                kept = range(1 if t == "mix_single" else n_src)
                row = {"mixture_ID": mid, "mixture_path": f"{far}/{t}/{mid}.wav"}
                row.update({f"source_{j + 1}_path": f"{far}/s{j + 1}/{mid}.wav" for j in kept})
                row.update({"noise_path": f"{far}/noise/{mid}.wav"} if t != "mix_clean" else {})
                rows[t].append({**row, "length": len(srcs[0])})
        for t, table in rows.items():
            path = base / "metadata" / f"mixture_{subset}_{t}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=list(table[0]) if table else ["mixture_ID", "length"])
                w.writeheader()
                w.writerows(table)
    return root


def wsj0_name(n_src: int, k: int, split: str) -> str:
    """<utt>_<snr>_<utt>_<snr>: 8-character WSJ0 utterance IDs (speaker = first 3), SNRs in dB."""
    spk = ["01a", "209", "40b", "02c"] if split != "tt" else ["050", "22g", "440"]
    utts = [f"{spk[(k + j) % len(spk)]}{'oac'[j]}01{k:02d}" for j in range(n_src)]
    snr = round(0.25 + 0.5 * k, 5)
    return "_".join(f"{u}_{s}" for u, s in zip(utts, [snr, -snr, 0.0][:n_src]))


def wsj0mix(
    root: Path, n_src: int = 2, rate: str = "8k", mode: str = "min", counts: dict[str, int] | None = None
) -> Path:
    """``root/<n>speakers/wav<rate>/<mode>/{tr,cv,tt}/{mix,s1..sn}/<name>.wav``; no metadata."""
    sr = {"8k": 8000, "16k": 16000}[rate]
    base = root / f"{n_src}speakers" / f"wav{rate}" / mode
    for split, n in (counts or {"tr": 4, "cv": 1, "tt": 1}).items():
        for k in range(n):
            name = wsj0_name(n_src, k, split)
            seconds = 1.5 + 0.25 * (k % 3)
            srcs = [noise(f"wsj0/{split}/{name}/s{j + 1}", seconds, sr) for j in range(n_src)]
            for j, x in enumerate(srcs):
                write(base / split / f"s{j + 1}" / f"{name}.wav", x, sr)
            write(base / split / "mix" / f"{name}.wav", np.clip(sum(srcs), -1, 1), sr)
    return root
