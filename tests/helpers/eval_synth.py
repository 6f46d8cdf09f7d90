"""A synthetic study written straight from known numbers (not through transfersep's writers).

Per-excerpt scores of a run = the shared baseline scores + a per-run offset pattern, so every
paired difference is known exactly and its sign pattern makes the one-sided Wilcoxon result
certain: a constant positive shift over 30 excerpts gives p < 1e-6, a constant negative shift
gives p ~ 1, an alternating +- shift gives p ~ 0.5.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

E = 30  # excerpts
SOURCES = ["lo", "hi"]
CORPORA = ("musdb", "slakh", "both")
AUGMENTS = ("none", "pitch", "stretch", "incoherent")
DOWNS = ("bach10", "dagstuhl")

# Distinct magnitudes keep the ranks of the paired differences free of float-rounding ties.
JITTER = 0.01 * (np.random.default_rng(0).permutation(E) - (E - 1) / 2)  # mean exactly 0
ONE = np.ones(E) + JITTER  # mean 1, all positive
ALT = np.where(np.arange(E) % 2 == 0, 1.0, -1.0) * (1 + np.arange(E) / E)  # about half +: never significant
# whole-model offset over the baseline (augment=none): musdb, slakh certain wins, both a coin flip
WHOLE = {"musdb": 3.0 * ONE, "slakh": 4.0 * ONE, "both": 2.0 * ALT}
# self-supervised pretrainings on Slakh's mixtures: MixIT a certain win over slakh, bootstrapped a certain loss
WHOLE.update(slakh_mixit=5.0 * ONE, slakh_boot=1.0 * ONE)
# augmentation effect over augment=none (whole-models)
AUG = {"none": 0.0 * ONE, "pitch": 0.5 * ONE, "stretch": -0.5 * ONE, "incoherent": ALT}
# mask minus whole: a certain increase only for (dagstuhl, musdb, pitch)
MASK_UP = ("dagstuhl", "musdb", "pitch")


def mask_delta(d: str, c: str, a: str) -> np.ndarray:
    return 1.0 * ONE if (d, c, a) == MASK_UP else -3.0 * ONE


def base_scores(d: str) -> np.ndarray:
    """[E, C] baseline scores; excerpt 0's source 'hi' is silent (NaN) in every run."""
    rng = np.random.default_rng(len(d))
    s = rng.normal(0.0, 2.0, size=(E, len(SOURCES)))
    s[0, 1] = np.nan
    return s


def run_offset(key: tuple) -> np.ndarray:
    if key[0] == "baseline":
        return 0.0 * ONE
    if key[0] == "zeroshot":  # the pretrained model before fine-tuning: 5 dB below scratch
        return -5.0 * ONE
    _, c, a, f, d = key
    off = WHOLE[c] + AUG[a]
    return off + (mask_delta(d, c, a) if f == "mask" else 0.0)


def run_scores(key: tuple) -> np.ndarray:
    """[E, C]: the same offset added to every source, so the per-excerpt mean moves by it too."""
    return base_scores(key[-1]) + run_offset(key)[:, None]


FLOOR_DB = -4.5  # the mixture-as-estimate SI-SDR a zero-shot probe records


def excerpt_mean(s: np.ndarray) -> np.ndarray:
    return np.array([np.mean(row[~np.isnan(row)]) for row in s])


def overall_mean(key: tuple) -> float:
    return float(np.mean(excerpt_mean(run_scores(key))))


def point_of(key: tuple):
    """The report's key (a ``GridPoint``) of this module's ``("finetune", c, a, f, d)``,
    ``("zeroshot", c, a, d)`` or ``("baseline", d)``."""
    from transfersep.run.point import GridPoint

    if key[0] == "baseline":
        return GridPoint.baseline(key[1])
    if key[0] == "zeroshot":
        return GridPoint.zeroshot(*key[1:])
    return GridPoint(*key[1:])


def all_keys(downs=DOWNS) -> list[tuple]:
    keys = []
    for d in downs:
        keys.append(("baseline", d))
        keys += [("finetune", c, a, f, d) for c in CORPORA for a in AUGMENTS for f in ("whole", "mask")]
    return keys


def origin(d: str, e: int) -> tuple[str, float, float]:
    """(track, start_s, seconds) of excerpt e: bach10 = 6 pieces x 5 overlapping 10-s excerpts
    (starts 0, 2, .. 8 s: one time block and one unit per piece, 6 non-overlapping excerpts);
    dagstuhl = 30 takes, one excerpt each (30 units, all non-overlapping)."""
    if d == "bach10":
        return f"piece {e // 5}", 2.0 * (e % 5), 10.0
    return f"take {e}", 0.0, 10.0


def unit_of(d: str) -> np.ndarray:
    """The independent unit (piece / take) of every excerpt, as constructed in ``origin``."""
    return np.arange(E) // 5 if d == "bach10" else np.arange(E)


def write_run(root: Path, key: tuple, origins: bool = True, study: str = "study") -> Path:
    if key[0] == "baseline":
        run = root / study / "baseline" / key[1]
        gp = {"stage": "baseline", "pretrain": "none", "augment": "none", "finetune": "whole", "downstream": key[1]}
    elif key[0] == "zeroshot":
        _, c, a, d = key
        run = root / study / "zeroshot" / f"{c}-{a}-{d}"
        gp = {"stage": "zeroshot", "pretrain": c, "augment": a, "finetune": None, "downstream": d}
    else:
        _, c, a, f, d = key
        run = root / study / "finetune" / f"{c}-{a}-{f}-{d}"
        gp = {"stage": "finetune", "pretrain": c, "augment": a, "finetune": f, "downstream": d}
    run.mkdir(parents=True)
    s = run_scores(key)
    with open(run / "scores.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["excerpt", "source", "sisdr_db", "silent_reference", "track", "start_s", "seconds"])
        for e in range(E):
            for j, name in enumerate(SOURCES):
                w.writerow(
                    [e, name, "nan" if np.isnan(s[e, j]) else f"{s[e, j]:.12f}", int(np.isnan(s[e, j]))]
                    + (list(origin(key[-1], e)) if origins else ["", "", ""])  # empty: origins unknown
                )
    m = excerpt_mean(s)
    result = {
        "schema": 1,
        "grid_point": gp,
        "sources": SOURCES,
        "n_excerpts": E,
        "n_excluded": 1,
        "overall": {"mean": float(m.mean()), "median": float(np.median(m)), "std": float(m.std(ddof=1)), "n": E},
        "per_source": {
            n: {
                "mean": float(np.nanmean(s[:, j])),
                "median": None,
                "std": None,
                "n": int((~np.isnan(s[:, j])).sum()),
                "n_excluded": int(np.isnan(s[:, j]).sum()),
            }
            for j, n in enumerate(SOURCES)
        },
        "test_set_sha1": f"sha-{key[-1]}",
        "extra": {"steps": 200, "seed": 0, **({"mixture_as_estimate_sisdr": FLOOR_DB} if key[0] == "zeroshot" else {})},
    }
    (run / "result.json").write_text(json.dumps(result))
    steps = np.arange(0, 1201 if key[0] == "baseline" else 201, 100)
    top = float(m.mean())
    curve = top - 8.0 * np.exp(-steps / (400.0 if key[0] == "baseline" else 50.0))
    with open(run / "curve.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["step", "sisdr_db"] + [f"sisdr_db_{n}" for n in SOURCES])
        for st, v in zip(steps, curve):
            w.writerow([int(st), v, v, v])
    (run / "status.json").write_text(json.dumps({"state": "finished", "grid_point": gp}))
    return run


def make_study(root: Path, drop: tuple = (), origins: bool = True) -> list[tuple]:
    keys = [k for k in all_keys() if k not in drop]
    for k in keys:
        write_run(root, k, origins)
    # a pretraining run has no result.json and must be ignored; add a status.json like the real one
    pre = root / "study" / "pretrain" / "musdb-none"
    pre.mkdir(parents=True)
    (pre / "status.json").write_text(json.dumps({"state": "finished"}))
    return keys
