"""The zero-shot probe as a run of the study (``finetune=zeroshot``; ``run.lifecycle`` calls it where a
training run would fit): the pretrained model of the grid point's (pretrain, augment) scored on the
downstream set's test excerpts without training, written as a fine-tune's ``scores.csv`` /
``result.json``. What is scored follows from what the model file says it learned by (its
``objective``, ``model.package``) and how that objective's entry says its probe separates
(``transfersep.model.objectives``, ``probe``):

* ``clusters`` (the embedding-trained objectives): k-means clusters of its embeddings, matched to
  the references (``model.clusters``; ``result.json`` ``extra.method`` = ``"dc-kmeans"``);
* ``outputs``: its M mask outputs, summed onto the references by each excerpt's best assignment
  (``evaluation.grouping``; ``"mixit-grouping"``).
"""

from __future__ import annotations

import logging

from omegaconf import DictConfig

from transfersep.run.initial import build_system, load_parent, load_pretrained, run_device
from transfersep.run.plan import Plan
from transfersep.run.records import parent_loaded
from transfersep.run.scoring import CLUSTERS, MASKS, score_and_record

log = logging.getLogger("transfersep")


def run_probe(cfg: DictConfig, plan: Plan, dm) -> dict:
    """The zero-shot probe (``finetune=zeroshot``): score the pretrained model on the downstream test
    excerpts as its objective allows (module docstring); nothing trains."""
    from omegaconf import OmegaConf

    from transfersep.model.package import weights_digest

    parent = load_parent(plan.parent_ckpt, OmegaConf.to_container(cfg.model, resolve=True))
    parent_loaded(plan, weights_digest(parent.net.state_dict()))
    device = run_device(cfg)  # where the trainer would run: the model, grouping or k-means, and SI-SDR
    from transfersep.model.objectives import get

    if get(parent.objective).probe == "outputs":
        separate, align, how, method = _output_separator(parent, device)
    else:
        separate, align, how, method = _cluster_separator(cfg, plan, dm, parent, device)
    result = score_and_record(
        cfg,
        plan,
        dm,
        separate,
        checkpoint=plan.parent_ckpt,
        device=device,
        how=how,
        align=align,
        fields={**method, "objective": parent.objective, "device": device.type},
    )
    extra = result["extra"]
    log.info(
        "%s: zero-shot SI-SDR %.2f dB (%s) over %d excerpts (the mixture as the estimate: %.2f dB)",
        plan.subdir,
        result["overall"]["mean"],
        method["method"],
        result["n_excerpts"],
        extra["mixture_as_estimate_sisdr"],
    )
    return result


def _cluster_separator(cfg: DictConfig, plan: Plan, dm, parent, device):
    """k-means of the embeddings: the backbone and embedding head in a system of the downstream sources."""
    from dataclasses import replace

    from transfersep.evaluation.matching import match_to_references
    from transfersep.model.clusters import ClusterSeparator

    system = build_system(cfg, replace(plan, phase="mask"), dm.source_names)
    load_pretrained(system, plan.parent_ckpt, parent)
    system.to(device)
    sep = ClusterSeparator(
        system.model,
        system.stft,
        k=len(dm.source_names),
        seed=int(cfg.seed),
        floor_db=float(cfg.finetune.floor_db),
        max_fit_bins=int(cfg.finetune.max_fit_bins),
    )
    method = {"method": "dc-kmeans", "floor_db": sep.floor_db, "max_fit_bins": sep.max_fit_bins}
    return sep, match_to_references, CLUSTERS, method


def _output_separator(parent, device):
    """The model's own M mask outputs, grouped onto the references per excerpt."""
    from transfersep.evaluation.grouping import group_to_references

    parent.to(device)
    method = {"method": "mixit-grouping", "outputs": len(parent.source_names)}
    return parent.separate, group_to_references, MASKS, method
