"""Pretrained models that ship with the package, so a fresh install can separate and fine-tune with
no network and no training first.

Each entry says what the model was trained on, its sizes, its scores, the digest of its weights
and the one command that reproduces it. ``init_from=<name>`` and ``separate --model <name>`` take a
shipped model's name wherever they take a path (``resolve``); ``transfersep models`` lists them.

These are small models trained on one CPU on rendered audio: ``slakh-cpu`` (2.3 M parameters, the
CPU preset's sizes: fine-tune your own stems from it with ``experiment=cpu``) and ``demo-slakh`` (the
demo's own pretraining, ``experiment=demo``). Starting points on a laptop, not models for real
recordings as they are.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

__all__ = ["SHIPPED", "ShippedModel", "file_sha256", "path_of", "resolve", "resolve_overrides", "weights_sha256_of"]

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
    experiment: str = "cpu"  # the preset whose model sizes are this model's (a fine-tune from it uses it)

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
        experiment="demo",
    ),
    "slakh-cpu": ShippedModel(
        name="slakh-cpu",
        file="slakh-cpu.safetensors",
        trained_on=(
            "deep clustering on the large Slakh-style corpus (~104 min of training audio: 260 tracks of bass, drums, "
            "piano/guitar and other General-MIDI instruments rendered with FluidSynth from music21 scores, "
            "`python -m transfersep.demo.corpus cpu_data --size large --only slakh`): 6000 iterations of 8 x 1-s "
            "excerpts at 16 kHz (7.4 passes), seed 0, experiment=cpu, one thread of a 2-core AMD EPYC (41 min)"
        ),
        sizes={"num_layers": 2, "hidden_size": 128, "embedding_dim": 20, "n_bins": 257},
        parameters=2_311_193,
        scores={
            "zero-shot probe, demo Bach10-style test piece (100 x 1 s)": (
                "-4.51 dB SI-SDR (k-means of its embeddings; the mixture as estimate: -5.56 dB)"
            ),
            "zero-shot probe, demo Dagstuhl-style test takes (100 x 1 s)": (
                "0.62 dB SI-SDR (below the mixture as estimate: 1.70 dB)"
            ),
            "whole-model fine-tune, 400 iterations, experiment=cpu, same Bach10-style excerpts": (
                "-2.20 dB SI-SDR (demo-slakh fine-tuned the same way: -4.07 dB)"
            ),
            "whole-model fine-tune, 400 iterations, experiment=cpu, same Dagstuhl-style excerpts": (
                "7.11 dB SI-SDR (demo-slakh fine-tuned the same way: 5.99 dB)"
            ),
        },
        weights_sha256="ef038ff68de01c7569561e6e649089a200705ee6c04c99e18fb9fbb9e04adab4",
        file_sha256="8a47aec540160032dd5a0dfa526de31c1adde35bc816911c56e8c3fbd38f04d6",
        reproduce=(
            "make model-cpu  (renders the corpus into cpu_data, pretrains on one thread, then "
            "`transfersep models --compare runs/cpu/pretrain/slakh-none`; the weights digest matches only on the "
            "same machine class and torch version)"
        ),
        caveat=(
            "a 2.3 M-parameter model trained in under an hour of one CPU core on rendered audio: a starting point "
            "for fine-tuning your own stems on a laptop, not a model for real recordings as it is; each score is "
            "one trained model's"
        ),
        experiment="cpu",
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


def weights_sha256_of(path: str | Path) -> str:
    """The digest over the tensors of the package or run at ``path``, as its header records it after
    loading checked it (``model.loading.load_model`` refuses a package whose tensors disagree)."""
    from transfersep.model.loading import load_model
    from transfersep.model.package import weights_digest

    return weights_digest(load_model(path).net.state_dict())


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
