"""Pretrained models that ship with the package, so a fresh install can separate and fine-tune with
no network and no training first.

Each entry says what the model was trained on, its sizes, its scores, the digest of its weights
and the one command that reproduces it. ``init_from=<name>`` and ``separate --model <name>`` take a
shipped model's name wherever they take a path (``resolve``); ``transfersep models`` lists them.

These are small models trained in minutes on rendered audio: a starting point for trying the tool
on a laptop, not models for real recordings.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

__all__ = ["SHIPPED", "ShippedModel", "file_sha256", "path_of", "resolve", "resolve_overrides"]

_PLAIN = re.compile(r"[\w./:@%+-]*")  # what Hydra's override grammar takes unquoted
# the config keys that name a model file, so a shipped model's name can stand in for its path
MODEL_KEYS = ("init_from",)


@dataclass(frozen=True)
class ShippedModel:
    name: str
    file: str  # inside this package
    trained_on: str
    sizes: dict[str, int]  # the model config a run that loads it needs (model.*)
    parameters: int
    scores: dict[str, str] = field(default_factory=dict)  # what was measured -> the figure, said in words
    weights_sha256: str = ""  # over the tensors (model.package.weights_digest), as the file's header records it
    file_sha256: str = ""  # of the file as shipped
    reproduce: str = ""
    caveat: str = ""

    @property
    def path(self) -> Path:
        return Path(str(resources.files(__name__) / self.file))


SHIPPED: dict[str, ShippedModel] = {
    "demo-slakh": ShippedModel(
        name="demo-slakh",
        file="demo-slakh.safetensors",
        trained_on=(
            "deep clustering on the demo's Slakh-style corpus (~41 min of bass, drums, piano/guitar rendered "
            "with FluidSynth from music21 scores): 2000 iterations of 8 x 1-s excerpts at 16 kHz, seed 0, "
            "experiment=demo, on 2 CPU cores (22 min 48 s)"
        ),
        sizes={"num_layers": 2, "hidden_size": 64, "embedding_dim": 10, "n_bins": 257},
        parameters=696_207,
        scores={
            "zero-shot probe, demo Bach10-style test piece (100 x 1 s)": (
                "-4.46 dB SI-SDR (k-means of its embeddings; the mixture as estimate: -5.56 dB)"
            ),
            "whole-model fine-tune, 400 iterations, same test excerpts": "-4.07 dB SI-SDR",
            "for reference, a from-scratch baseline of 2400 iterations there": "-1.05 dB SI-SDR",
        },
        weights_sha256="445029c9e2a79b30e86f36ca555eb29a42fbbbcd7b8136377eaf8e9f5a0c427f",
        file_sha256="c5fd60320a6bdcd28831a269ff155effb0fb3c153a47ddb36ceca8191d76c811",
        reproduce=(
            "OMP_NUM_THREADS=1 python -m transfersep.cli.train experiment=demo paths.data_dir=demo_data "
            "study=demo pretrain=slakh augment=none seed=0  (after `make demo` has rendered demo_data; "
            "the weights digest matches only on the same machine class and torch version)"
        ),
        caveat=(
            "a 0.7 M-parameter model trained in minutes on rendered audio: a starting point for trying the tool "
            "on a laptop, not a model for real music; on the demo's own test piece its fine-tune still trails a "
            "from-scratch baseline"
        ),
    ),
}


def path_of(name: str) -> Path:
    """The file of the shipped model ``name`` (``KeyError`` naming the shipped ones otherwise)."""
    if name not in SHIPPED:
        raise KeyError(f"{name!r} is no shipped model; shipped: {', '.join(SHIPPED)} (`transfersep models`)")
    return SHIPPED[name].path


def resolve(value: str) -> str:
    """``value`` as a model path: a shipped model's name becomes its file, unless a file or folder of
    that name exists here (a path the user typed always wins over a name)."""
    if value in SHIPPED and not Path(value).expanduser().exists():
        return str(SHIPPED[value].path)
    return value


def resolve_overrides(overrides: list[str]) -> list[str]:
    """Command-line overrides with a shipped model's name in ``init_from=`` replaced by its file,
    so that everything downstream (the plan, the run's recorded config) sees a path."""
    out = []
    for o in overrides:
        key, sep, value = o.partition("=")
        if sep and key.lstrip("+~") in MODEL_KEYS and resolve(value) != value:
            path = resolve(value)  # an install folder may hold spaces: quoted in the grammar's own syntax
            o = f"{key}={path}" if _PLAIN.fullmatch(path) else "{}='{}'".format(key, path.replace("'", "\\'"))
        out.append(o)
    return out


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
