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

from transfersep.run.fit import mixture_as_estimate_sisdr, split_record
from transfersep.run.initial import build_system, load_parent, load_pretrained, run_device
from transfersep.run.plan import Plan
from transfersep.run.records import write_status

log = logging.getLogger("transfersep")


def run_probe(cfg: DictConfig, plan: Plan, dm) -> dict:
    """The zero-shot probe (``finetune=zeroshot``): score the pretrained model on the downstream test
    excerpts as its objective allows (module docstring); nothing trains."""
    from omegaconf import OmegaConf

    from transfersep.evaluation.evaluate import evaluate
    from transfersep.model.package import weights_digest

    parent = load_parent(plan.parent_ckpt, OmegaConf.to_container(cfg.model, resolve=True))
    if plan.parent is not None:
        # what was loaded is the truth, recorded at once
        plan.parent["weights_sha256"] = weights_digest(parent.net.state_dict())
        write_status(plan.run_dir, "running", plan)
    device = run_device(cfg)  # where the trainer would run: the model, grouping or k-means, and SI-SDR
    from transfersep.model.objectives import get

    if get(parent.objective).probe == "outputs":
        separate, align, batch_size, method = _output_separator(parent, device)
    else:
        separate, align, batch_size, method = _cluster_separator(cfg, plan, dm, parent, device)
    floor = mixture_as_estimate_sisdr(dm.test_set, len(dm.source_names), device)
    extra = {
        **method,
        "objective": parent.objective,
        "seed": int(cfg.seed),
        "split": split_record(dm),
        "study": str(cfg.study),
        "checkpoint": str(plan.parent_ckpt),
        "device": device.type,
        "mixture_as_estimate_sisdr": floor,
        **({"parent": plan.parent} if plan.parent else {}),
    }
    result = evaluate(
        separate,
        dm.test_set,
        dm.source_names,
        plan.run_dir,
        plan.grid_point,
        batch_size=batch_size,
        device=device,
        extra=extra,
        align=align,
    )
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
    # [B, T, F, D] embeddings: 20 floats a bin, so the training batch
    return sep, match_to_references, int(cfg.data.batch_size), method


def _output_separator(parent, device):
    """The model's own M mask outputs, grouped onto the references per excerpt."""
    from transfersep.evaluation.grouping import group_to_references

    parent.to(device)
    method = {"method": "mixit-grouping", "outputs": len(parent.source_names)}
    return parent.separate, group_to_references, None, method  # None: the evaluation's mask-head batch
