"""Where the configs are, how they are composed, and the resolvers they use.

One rule finds the configs: ``$TRANSFERSEP_CONF`` when set (a folder laid out like ``conf/``),
otherwise ``transfersep/run/conf``. In a checkout (editable install) ``src/transfersep/run/conf``
is a link to the repository's ``conf/`` (which links ``sweeps/``); a wheel ships a copy of both, so
an installed ``transfersep train`` works from any folder.

The resolvers (``${run_dir:}``, ``${run_subdir:}``, ``${sum:a,b}``, ``${cwd:}``,
``${grid_sweep:<stage>}``) are registered by the entry points (``register_resolvers``); ``compose``
registers them itself.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

CONF_ENV = "TRANSFERSEP_CONF"
CONF_PACKAGE = "transfersep.run"  # holds conf/ (a link to the repository's conf/, copied into a wheel)
PRIMARY = "train"


def conf_dir() -> Path:
    """The config folder (see the module docstring for the rule)."""
    env = os.environ.get(CONF_ENV)
    if env:
        return Path(env).expanduser().resolve()
    return Path(str(resources.files(CONF_PACKAGE) / "conf"))


def register_resolvers() -> None:
    """``${run_dir:}``, ``${run_subdir:}``, ``${sum:a,b}`` and ``${cwd:}`` for the Hydra configs (the
    sweeps' ``${grid_sweep:<stage>}`` is the study's: ``transfersep.study.grid.register_resolver``)."""
    from transfersep.run.plan import resolve_run_dir, resolve_subdir

    for name, fn in (
        ("run_dir", resolve_run_dir),
        ("run_subdir", resolve_subdir),
        ("sum", lambda *xs: sum(xs)),
        ("cwd", os.getcwd),
    ):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)


def compose(overrides: Sequence[str] = (), hydra_node: bool = False) -> DictConfig:
    """The config ``transfersep train <overrides>`` gets (with the ``hydra`` node and Hydra's runtime
    set when ``hydra_node``, so that ``${hydra:...}`` interpolations resolve)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from transfersep.model.shipped import resolve_overrides

    register_resolvers()
    overrides = resolve_overrides(list(overrides))  # init_from=<shipped model name>, as `transfersep train` does
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = hydra_compose(PRIMARY, overrides=list(overrides), return_hydra_config=hydra_node)
        if hydra_node:
            from hydra.core.hydra_config import HydraConfig

            HydraConfig.instance().set_config(cfg)
    return cfg


def in_multirun() -> bool:
    """True inside a job of a Hydra multirun. There a SystemExit would end the whole sweep (and,
    under submitit, leave a job without a result, which the launcher waits for forever where SLURM
    has no accounting)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
