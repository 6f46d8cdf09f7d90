"""The pretraining objectives, declared once: what a pretraining learns by.

Each entry of the registry (``register``, ``get``, ``names``) declares everything the rest of the
package asks about an objective:

* ``loss``: the pretraining loss, ``loss(system, batch) -> {"loss": ..., <parts>}``;
* ``trains``: the head the pretraining trains (``embedding`` or ``mask``); the other gets no gradient;
* ``items``: what a training item holds, one of the data side's item kinds (``transfersep.data.registry.ITEMS``:
  ``stems``, the corpus's stems; ``pairs``, two gained mixtures of different tracks; ``grouped``, one
  mixture with labels from primitive grouping cues);
* ``reads_stems``: False when the corpus is read as mixtures only (its stems summed, never a
  target); such a pretraining has no incoherent mixing (``excluded``) and runs on any folder of audio;
* ``probe``: how the zero-shot probe separates with it: ``clusters`` (k-means of the embeddings) or
  ``outputs`` (the mask head's own outputs, grouped onto the references);
* ``records``: the system's hyperparameters its model package records beside ``objective``;
* ``numbers``: its numeric settings, which a run checks before anything is written (``run.typed``);
* ``folder``: how run folders and records name a corpus pretrained by it (figures name it by its
  label in ``sweeps/grid.yaml``, ``labels.objective``).

The objective is chosen by the config group ``conf/objective/<name>.yaml`` (package ``pretrain``: it
writes ``pretrain.objective`` and the objective's settings ``pretrain.<name>``), and swept by the
``objective`` axis of ``sweeps/grid.yaml`` beside ``pretrain``, which names the corpus only.

Run folders keep the names they had when the objective was part of the corpus's name: a corpus
pretrained by an objective is ``<corpus><folder>`` (``slakh`` with ``dc`` is ``pretrain/slakh-none``,
with ``mixit`` ``pretrain/slakh_mixit-none``). The old spelling ``pretrain=slakh_mixit`` is no
alias: it is refused in one line that says ``pretrain=slakh objective=mixit`` (``respelling``),
so one grid point has one spelling.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Losses = Callable[[Any, dict], dict]


@dataclass(frozen=True)
class Objective:
    name: str
    loss: Losses
    trains: str  # embedding | mask: the head pretraining trains
    items: str  # stems | pairs | grouped: what a training item holds (transfersep.data item kinds)
    reads_stems: bool  # False: the corpus is read as mixtures only
    probe: str  # clusters | outputs: how the zero-shot probe separates
    folder: str = ""  # appended to the corpus in run folders and the report's pretraining names
    records: tuple[str, ...] = ()  # system hyperparameters its package records
    # (dotted key below pretrain, int | float, lower bound, zero allowed) of its numeric settings
    numbers: tuple[tuple[str, type, float, bool], ...] = ()
    # checks the system's settings for this objective and returns the ones to keep (ValueError naming the key)
    check: Callable[[str, list[str], dict[str, Any]], dict[str, Any]] | None = None
    # the model's source names while pretraining, when its mask head has outputs of its own
    outputs: Callable[[dict[str, Any]], list[str]] | None = None


_REGISTRY: dict[str, Objective] = {}


def register(entry: Objective) -> Objective:
    """Add (or replace) an objective; returns it."""
    if entry.trains not in ("embedding", "mask"):
        raise ValueError(f"objective {entry.name}: trains must be embedding or mask, got {entry.trains!r}")
    if entry.probe not in ("clusters", "outputs"):
        raise ValueError(f"objective {entry.name}: probe must be clusters or outputs, got {entry.probe!r}")
    _REGISTRY[entry.name] = entry
    return entry


def names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def entries() -> tuple[Objective, ...]:
    return tuple(_REGISTRY.values())


def get(name: str | None) -> Objective:
    """The entry of ``name`` (None, ``none`` or absent: ``dc``, what every run learned by before the
    key existed); an unknown name raises ``ValueError`` naming ``objective=`` and the choices."""
    key = "dc" if name in (None, "none", "") else str(name)
    if key not in _REGISTRY:
        raise ValueError(f"objective={key}: no such pretraining objective; choose one of {', '.join(_REGISTRY)}")
    return _REGISTRY[key]


def of_config(cfg: Any) -> Objective:
    """The objective of a run config (``pretrain.objective``; absent: dc)."""
    pre = cfg.get("pretrain") if hasattr(cfg, "get") else None
    return get(pre.get("objective") if pre is not None else None)


def settings(cfg: Any, entry: Objective) -> dict[str, Any] | None:
    """The objective's settings of a run config (``pretrain.<name>``), as plain data, or None."""
    from omegaconf import OmegaConf

    node = cfg.pretrain.get(entry.name) if cfg.get("pretrain") is not None else None
    return None if node is None else OmegaConf.to_container(node, resolve=True)


def run_name(corpus: str, objective: str | None = "dc") -> str:
    """How run folders and the report name ``corpus`` pretrained by ``objective`` (``slakh_mixit``)."""
    return corpus if corpus == "none" else f"{corpus}{get(objective).folder}"


def split_name(name: str, objective: str | None = None) -> tuple[str, str]:
    """(corpus, objective) of a pretraining's run name (``run_name``'s inverse; ``slakh`` -> dc). With
    the ``objective`` a record names beside it (``slakh_mixit`` and ``mixit``), that objective, and
    the corpus without its folder suffix; an unknown one raises ``ValueError`` (``get``)."""
    if objective not in (None, ""):
        entry = get(objective)
        cut = bool(entry.folder) and name.endswith(entry.folder) and len(name) > len(entry.folder)
        return (name[: -len(entry.folder)] if cut else name), entry.name
    for entry in _REGISTRY.values():
        if entry.folder and name.endswith(entry.folder) and len(name) > len(entry.folder):
            return name[: -len(entry.folder)], entry.name
    return name, "dc"


def respelling(value: str) -> str | None:
    """``pretrain=slakh objective=mixit`` for a former corpus name that held an objective
    (``slakh_mixit``), or None."""
    corpus, objective = split_name(value)
    return f"pretrain={corpus} objective={objective}" if objective != "dc" else None


def excluded(objective: str, augment_incoherent: bool) -> str | None:
    """Why a pretraining of ``objective`` under this augmentation is no run, or None: incoherent
    mixing draws each stem from another track, and an objective that reads mixtures only has none."""
    if augment_incoherent and not get(objective).reads_stems:
        return (
            f"objective={objective} reads its corpus without stems, and incoherent mixing draws each stem "
            "class from another track; use augment=none, pitch or stretch"
        )
    return None


# -- the losses -------------------------------------------------------------------------------
def _dc_loss(system: Any, batch: dict) -> dict:
    return system.stem_losses(batch)


def _mixit_loss(system: Any, batch: dict) -> dict:
    """MixIT on ``mix [B, N]`` = the sum of the two reference mixtures ``sources [B, 2, N]``: the mask
    head's M estimates (masks on the mixture STFT, its phase) against the references."""
    import torch

    from transfersep.model.mixit import mixit_loss

    mix = batch["mix"]
    with torch.autocast(mix.device.type, enabled=False):
        spec = system.stft(mix)
    masks = system.model.mask(system.model.features(spec.abs()))  # [B, M, T, F]
    with torch.autocast(mix.device.type, enabled=False):  # the iSTFT and the loss in fp32 or wider
        est = system.stft.inverse(masks.float() * spec.unsqueeze(1), mix.shape[-1])
        loss, _ = mixit_loss(est, batch["sources"], system.hparams.mixit["snr_max_db"])
    return {"mixit": loss, "loss": loss}


def _bootstrap_loss(system: Any, batch: dict) -> dict:
    """DC pretraining on the primitives' labels, each bin weighted by their agreement."""
    import torch

    from transfersep.model import losses

    if "dc_labels" not in batch or "dc_weights" not in batch:
        raise KeyError(
            "objective bootstrap needs batches with dc_labels and dc_weights: serve the pretraining "
            "sets through transfersep.data.bootstrap (objective=bootstrap does)"
        )
    with torch.autocast(batch["mix"].device.type, enabled=False):
        mix_mag = system.stft(batch["mix"]).abs()
    weights = batch["dc_weights"].float()
    if system.hparams.dc_weights == "magnitude":
        weights = weights * losses.magnitude_weights(mix_mag)
    emb = system.model.embed(system.model.features(mix_mag))
    dc = losses.deep_clustering_loss(emb, batch["dc_labels"], system.hparams.bootstrap_groups, weights)
    return {"dc": dc, "loss": dc}


# -- the checks -------------------------------------------------------------------------------
def _check_mixit(phase: str, source_names: list[str], hp: dict[str, Any]) -> dict[str, Any]:
    from transfersep.model.mixit import mixit_settings, output_names

    if phase != "pretrain":
        raise ValueError(f"objective mixit is a pretraining objective; phase {phase!r} trains with the stems")
    mixit = mixit_settings(hp.get("mixit"))
    if list(source_names) != output_names(mixit["outputs"]):
        raise ValueError(
            f"a MixIT model's source names are its outputs {output_names(mixit['outputs'])}, got "
            f"{list(source_names)}; pass transfersep.model.mixit.output_names(pretrain.mixit.outputs)"
        )
    return {"mixit": mixit}


def _mixit_outputs(given: Mapping[str, Any] | None) -> list[str]:
    from transfersep.model.mixit import mixit_settings, output_names

    return output_names(mixit_settings(given)["outputs"])


def _check_bootstrap(phase: str, source_names: list[str], hp: dict[str, Any]) -> dict[str, Any]:
    if int(hp.get("bootstrap_groups", 2)) < 2:
        raise ValueError(f"bootstrap_groups must be at least 2, got {hp.get('bootstrap_groups')}")
    return {}


# the paper's deep clustering on the stems' ideal binary masks
register(Objective("dc", _dc_loss, trains="embedding", items="stems", reads_stems=True, probe="clusters"))
# mixture invariant training on mixtures of two mixtures (Wisdom et al., 2020)
register(
    Objective(
        "mixit",
        _mixit_loss,
        trains="mask",
        items="pairs",
        reads_stems=False,
        probe="outputs",
        folder="_mixit",
        records=("mixit",),
        numbers=(
            ("mixit.outputs", int, 2, True),  # fewer outputs than the two mixtures cannot separate them
            ("mixit.snr_max_db", float, 0.0, False),
            ("mixit.gain_db", float, 0.0, True),
        ),
        check=_check_mixit,
        outputs=_mixit_outputs,
    )
)
# deep clustering on labels bootstrapped from primitive grouping cues (Seetharaman et al., 2020)
register(
    Objective(
        "bootstrap",
        _bootstrap_loss,
        trains="embedding",
        items="grouped",
        reads_stems=False,
        probe="clusters",
        folder="_boot",
        check=_check_bootstrap,
    )
)
