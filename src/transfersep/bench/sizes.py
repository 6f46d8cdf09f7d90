"""The model sizes the benchmarks time, read from the configs training uses (``conf/model/``), so
that a benchmark of the "paper" model times the model ``model=chimera`` trains."""

from __future__ import annotations

from typing import Any

# benchmark name -> conf/model/<config>.yaml
MODEL_CONFIGS = {"paper": "chimera", "tiny": "tiny"}


def model_size(name: str) -> dict[str, Any]:
    """The ``ChimeraConfig`` fields of ``conf/model/<config>.yaml`` for the benchmark model ``name``."""
    from omegaconf import OmegaConf

    from transfersep.run.config import conf_dir

    if name not in MODEL_CONFIGS:
        raise ValueError(f"model {name!r}: choose one of {sorted(MODEL_CONFIGS)}")
    path = conf_dir() / "model" / f"{MODEL_CONFIGS[name]}.yaml"
    cfg = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    if not isinstance(cfg, dict):
        raise ValueError(f"{path}: expected a mapping of ChimeraNet settings")
    return cfg
