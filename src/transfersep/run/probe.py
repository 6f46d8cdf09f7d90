"""The zero-shot probe as a run of the study (``finetune=zeroshot``; ``run.lifecycle`` calls it where a
training run would fit): the pretrained model of the grid point's (pretrain, augment), its DC
clusters scored on the downstream set's test excerpts (``model.clusters``), written as a fine-tune's
``scores.csv`` / ``result.json``."""

from __future__ import annotations

import logging

from omegaconf import DictConfig

from transfersep.run.initial import build_system, load_pretrained, run_device
from transfersep.run.plan import Plan
from transfersep.run.records import write_status

log = logging.getLogger("transfersep")


def run_probe(cfg: DictConfig, plan: Plan, dm) -> dict:
    """The zero-shot probe (``finetune=zeroshot``): score the pretrained model's DC clusters on the
    downstream test excerpts; nothing trains (``transfersep.model.clusters``)."""
    from dataclasses import replace

    import numpy as np

    from transfersep.evaluation.evaluate import evaluate, score_excerpts
    from transfersep.evaluation.matching import match_to_references
    from transfersep.evaluation.sisdr import excerpt_means
    from transfersep.model.clusters import ClusterSeparator

    system = build_system(cfg, replace(plan, phase="mask"), dm.source_names)
    digest = load_pretrained(system, plan.parent_ckpt)
    if plan.parent is not None:
        plan.parent["weights_sha256"] = digest  # what was loaded is the truth, recorded at once
        write_status(plan.run_dir, "running", plan)
    device = run_device(cfg)  # where the trainer would run: embeddings, k-means, masks and SI-SDR
    system.to(device)
    sep = ClusterSeparator(
        system.model,
        system.stft,
        k=len(dm.source_names),
        seed=int(cfg.seed),
        floor_db=float(cfg.finetune.floor_db),
        max_fit_bins=int(cfg.finetune.max_fit_bins),
    )
    # the floor any separator should clear: the mixture itself as the estimate of every source
    n = len(dm.source_names)
    floor, silent, _ = score_excerpts(lambda m: m[:, None].expand(-1, n, -1).clone(), dm.test_set, n, device=device)
    extra = {
        "method": "dc-kmeans",
        "seed": int(cfg.seed),
        "study": str(cfg.study),
        "checkpoint": str(plan.parent_ckpt),
        "floor_db": sep.floor_db,
        "max_fit_bins": sep.max_fit_bins,
        "device": device.type,
        "mixture_as_estimate_sisdr": float(np.nanmean(excerpt_means(floor, silent))),
        **({"parent": plan.parent} if plan.parent else {}),
    }
    result = evaluate(
        sep,
        dm.test_set,
        dm.source_names,
        plan.run_dir,
        plan.grid_point,
        batch_size=int(cfg.data.batch_size),  # [B, T, F, D] embeddings: 20 floats a bin, so the training batch
        device=device,
        extra=extra,
        align=match_to_references,
    )
    log.info(
        "%s: zero-shot SI-SDR %.2f dB over %d excerpts (the mixture as the estimate: %.2f dB)",
        plan.subdir,
        result["overall"]["mean"],
        result["n_excerpts"],
        extra["mixture_as_estimate_sisdr"],
    )
    return result
