"""LibriMix-style speech corpus: ``LibriMix/Libri2Mix/wav16k/min/{train-100,dev,test}/{mix_clean,s1,s2}/``
and ``metadata/``, as JorisCos/LibriMix's generator writes it with ``--types mix_clean`` (see
``transfersep.data.librimix``), read aloud by espeak-ng from public-domain text (``texts.py``).

Speakers: each is one espeak-ng English voice (American, British, Scottish, RP, Lancaster, West
Midlands, Caribbean) with a male (m1-m7) or female (f1-f5) variant, its own pitch and speaking rate
-- the controls espeak-ng has -- and a LibriSpeech-style numeric ID; the train, dev and test
subsets have disjoint speakers, and dev and test read the last passages of the text, which training
never reads. An utterance is a passage of consecutive sentences (about 12-30 words), named
``<speaker>-<chapter>-<utterance>`` with the chapter standing for the work it reads. As in LibriMix:
every training utterance is used once, the two speakers of a mixture differ, each utterance is
loudness-normalised to a random -33..-25 LUFS, the files of a mixture are cut to its shorter
utterance (``min``), a mixture peaking above 0.9 is scaled down with its sources, and ``mix_clean``
is the exact 16-bit sum of ``s1`` and ``s2``. The text is short (about 2 900 words), so each
passage is read by several speakers: the corpus varies voices more than words.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from transfersep.audio import resample
from transfersep.demo import texts
from transfersep.demo.loudness import integrated_loudness
from transfersep.demo.render import RenderToolMissing, db, to_pcm16, write_audio

NAME, ROOT, SR = "librimix", "LibriMix", 16000
BASE = "Libri2Mix/wav16k/min"
ESPEAK_HINT = "apt-get install -y espeak-ng"
PRESETS = {
    "demo": dict(mixtures={"train-100": 310, "dev": 16, "test": 16}, speakers={"train-100": 40, "dev": 6, "test": 6}),
    "test": dict(mixtures={"train-100": 4, "dev": 1, "test": 1}, speakers={"train-100": 4, "dev": 2, "test": 2}),
}
ACCENTS = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029"]
VARIANTS = {"M": [f"m{k}" for k in range(1, 8)], "F": [f"f{k}" for k in range(1, 6)]}
PITCH = {"M": (20, 55), "F": (45, 85)}  # espeak-ng -p, 0-99 (50: the voice's own)
RATE = (135, 190)  # espeak-ng -s, words per minute
# demo: 310 training mixtures of ~8 s, as much audio as the Slakh-style corpus's 100 tracks (~41 min)
WORDS = (12, 30)  # words per utterance
LOUDNESS = (-33.0, -25.0)  # LUFS, LibriMix's range
MAX_AMP = 0.9  # LibriMix's ceiling for mixture and sources
HELD_OUT = 0.15  # the last share of the sentences: read in dev and test only
SUBSETS = ("train-100", "dev", "test")


def find_espeak() -> str:
    """Path of the ``espeak-ng`` CLI, or a clear error with the one command that installs it."""
    path = shutil.which("espeak-ng")
    if path is None:
        raise RenderToolMissing(
            "the demo's speech corpus is read aloud by espeak-ng, which is not installed; "
            f"install it with:  {ESPEAK_HINT}"
        )
    return path


def _speakers(rng: np.random.Generator, n: int, first_id: int) -> list[dict]:
    ids = np.sort(rng.choice(np.arange(first_id, first_id + 900), size=n, replace=False))
    out = []
    for k, sid in enumerate(ids):
        sex = "MF"[k % 2]
        out.append(
            dict(
                id=int(sid),
                sex=sex,
                voice=f"{ACCENTS[int(rng.integers(len(ACCENTS)))]}+{rng.choice(VARIANTS[sex])}",
                pitch=int(rng.integers(*PITCH[sex])),
                rate=int(rng.integers(*RATE)),
            )
        )
    return out


def _passage(units: list[tuple[str, str]], rng: np.random.Generator) -> tuple[str, str]:
    """A run of consecutive sentences of one work with about WORDS words."""
    want = int(rng.integers(*WORDS))
    i = int(rng.integers(len(units)))
    work, words, parts = units[i][0], 0, []
    while i < len(units) and units[i][0] == work and words < want:
        parts.append(units[i][1])
        words += len(units[i][1].split())
        i += 1
    return work, " ".join(parts)


def plan(cfg: dict, seed: int, lib) -> list[dict]:
    """One job per mixture: its two utterances (speaker, passage) and loudness targets."""
    find_espeak()
    rng = np.random.default_rng([seed, 21])
    units = texts.sentences()
    cut = int(round(len(units) * (1 - HELD_OUT)))
    works = list(texts.WORKS)
    jobs = []
    for s, subset in enumerate(SUBSETS):
        pool = units[:cut] if subset == "train-100" else units[cut:]
        speakers = _speakers(rng, cfg["speakers"][subset], 100 + 1000 * s)
        n_mix = cfg["mixtures"][subset]
        # every utterance once, the speakers in turn; grouped by speaker (in a random order), slot i
        # pairs with slot i + n_mix, so a mixture's two speakers differ (each has < n_mix slots)
        rank = {sp["id"]: r for r, sp in enumerate(speakers[i] for i in rng.permutation(len(speakers)))}
        slots = sorted((speakers[k % len(speakers)] for k in range(2 * n_mix)), key=lambda sp: rank[sp["id"]])
        pairs = [(slots[i], slots[i + n_mix]) for i in rng.permutation(n_mix)]
        count: dict[int, int] = {}
        for pair in pairs:
            utts = []
            for spk in pair:
                work, text = _passage(pool, rng)
                count[spk["id"]] = count.get(spk["id"], 0) + 1
                uid = f"{spk['id']}-{spk['id'] * 10 + works.index(work)}-{count[spk['id']]:04d}"
                utts.append(dict(speaker=spk, work=work, text=text, id=uid, lufs=float(rng.uniform(*LOUDNESS))))
            jobs.append(dict(subset=subset, utterances=utts, mixture_id="_".join(u["id"] for u in utts)))
    return jobs


def speak(text: str, voice: str, pitch: int, rate: int, scratch: str | None = None) -> np.ndarray:
    """espeak-ng's reading of ``text`` as float32 mono at 16 kHz."""
    fd, wav = tempfile.mkstemp(suffix=".wav", dir=scratch)
    os.close(fd)
    try:
        cmd = [find_espeak(), "-v", voice, "-p", str(pitch), "-s", str(rate), "-w", wav, "--", text]
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"espeak-ng failed for voice {voice} (rc {p.returncode}): {p.stderr.strip()[-300:]}")
        x, sr = sf.read(wav, dtype="float32", always_2d=True)
    finally:
        os.unlink(wav)
    return resample(x.mean(axis=1), sr, SR)


def build(job: dict, root: Path, renderer) -> dict:
    raw = []
    for u in job["utterances"]:
        s = u["speaker"]
        x = speak(u["text"], s["voice"], s["pitch"], s["rate"], renderer.scratch if renderer else None)
        raw.append(x * np.float32(db(u["lufs"] - integrated_loudness(x, SR))))
    n = min(len(x) for x in raw)  # min mode: every file cut to the shorter utterance
    srcs = [x[:n] for x in raw]
    peak = max(float(np.max(np.abs(np.sum(srcs, axis=0)))), *(float(np.max(np.abs(x))) for x in srcs))
    gain = min(1.0, MAX_AMP / peak) if peak > 0 else 1.0
    q = [to_pcm16(x * gain) for x in srcs]
    mix = np.sum([x.astype(np.int32) for x in q], axis=0).astype(np.int16)  # |mix| <= 0.9: no clipping
    d, mid = root / BASE / job["subset"], job["mixture_id"]
    for k, x in enumerate(q):
        write_audio(d / f"s{k + 1}" / f"{mid}.wav", x, SR)
    write_audio(d / "mix_clean" / f"{mid}.wav", mix, SR)
    return dict(
        path=f"{BASE}/{job['subset']}/mix_clean/{mid}.wav",
        seconds=n / SR,
        speakers=[
            {**u["speaker"], "utterance": u["id"], "work": u["work"], "text": u["text"]} for u in job["utterances"]
        ],
    )


def _snr(x: np.ndarray, rest: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(x**2) / (np.mean(rest**2) + 1e-10)))


def finish(root: Path, cfg: dict, seed: int) -> None:
    """``metadata/mixture_<subset>_mix_clean.csv`` and ``metrics_<subset>_mix_clean.csv``, with the
    absolute paths where the corpus lands (the folder being built is renamed into place)."""
    final = root.parent.parent / ROOT / BASE  # <out>/.building-*/LibriMix -> <out>/LibriMix
    meta = root / BASE / "metadata"
    meta.mkdir(parents=True, exist_ok=True)
    for subset in SUBSETS:
        d = root / BASE / subset
        ids = sorted(p.stem for p in (d / "mix_clean").glob("*.wav"))
        rows, metrics = [], []
        for mid in ids:
            s1, _ = sf.read(d / "s1" / f"{mid}.wav", dtype="float64")
            s2, _ = sf.read(d / "s2" / f"{mid}.wav", dtype="float64")
            paths = {k: str(final / subset / k / f"{mid}.wav") for k in ("mix_clean", "s1", "s2")}
            rows.append([mid, paths["mix_clean"], paths["s1"], paths["s2"], len(s1)])
            metrics.append([mid, _snr(s1, s2), _snr(s2, s1)])
        for name, head, table in (
            ("mixture", ["mixture_ID", "mixture_path", "source_1_path", "source_2_path", "length"], rows),
            ("metrics", ["mixture_ID", "source_1_SNR", "source_2_SNR"], metrics),
        ):
            with open(meta / f"{name}_{subset}_mix_clean.csv", "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(head)
                w.writerows(table)
