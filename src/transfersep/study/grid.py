"""The study's grid as the files in ``sweeps/`` define it, expanded the way Hydra's sweeper does.

``sweeps/{pretrain,finetune,baseline}.yaml`` hold ``hydra.sweeper.params``; ``conf/sweeps`` is a
link to that folder, so ``python train.py -m +sweeps=pretrain`` launches a grid. The status
command and the study runner read the same files here, so the grid is written down once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from omegaconf import OmegaConf

from transfersep.run.config import conf_dir
from transfersep.run.plan import stage_of, subdir_of

SWEEPS = ("pretrain", "zeroshot", "finetune", "baseline")  # in study order
GRID_KEYS = ("pretrain", "augment", "finetune", "downstream")
# the grid keys an override may narrow in each sweep: `downstream=bach10` narrows fine-tuning and
# baselines but must not turn the pretraining runs into fine-tunes
NARROWS = {
    "pretrain": ("pretrain", "augment"),
    "zeroshot": ("pretrain", "augment", "downstream"),
    "finetune": GRID_KEYS,
    "baseline": ("downstream",),
}


@dataclass(frozen=True)
class GridPoint:
    pretrain: str
    augment: str
    finetune: str
    downstream: str

    @property
    def stage(self) -> str:
        return stage_of(self.pretrain, self.augment, self.finetune, self.downstream)

    @property
    def subdir(self) -> str:
        return subdir_of(self.pretrain, self.augment, self.finetune, self.downstream)

    @property
    def parent_subdir(self) -> str | None:
        """The pretraining run a fine-tune (or the zero-shot probe) starts from."""
        return f"pretrain/{self.pretrain}-{self.augment}" if self.stage in ("finetune", "zeroshot") else None

    def as_dict(self) -> dict[str, str]:
        """As ``status.json``'s grid_point (a pretraining run has no finetune/downstream)."""
        d = {"stage": self.stage, **{k: getattr(self, k) for k in GRID_KEYS}}
        if self.stage == "pretrain":
            d.update(finetune="none", downstream="none")
        return d

    def overrides(self) -> list[str]:
        return [f"{k}={getattr(self, k)}" for k in GRID_KEYS]


def default_choices() -> dict[str, str]:
    """The grid keys' defaults in conf/train.yaml's defaults list."""
    defaults = OmegaConf.load(conf_dir() / "train.yaml").get("defaults", [])
    out = {}
    for entry in defaults:
        if OmegaConf.is_dict(entry):
            for k, v in entry.items():
                if k in GRID_KEYS:
                    out[str(k)] = str(v)
    return out


def sweep_params(name: str) -> dict[str, str]:
    """``hydra.sweeper.params`` of ``sweeps/<name>.yaml`` (values as Hydra override strings)."""
    sweeps_dir = conf_dir() / "sweeps"
    path = sweeps_dir / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in sweeps_dir.glob("*.yaml"))
        raise FileNotFoundError(f"no sweep '{name}' ({path} does not exist); known sweeps: {known}")
    params = OmegaConf.select(OmegaConf.load(path), "hydra.sweeper.params")
    if params is None:
        raise ValueError(f"{path} has no hydra.sweeper.params")
    return {str(k): str(v) for k, v in params.items()}


def expand(params: dict[str, str], overrides: Sequence[str] = ()) -> list[dict[str, str]]:
    """Jobs of a multirun as Hydra's basic sweeper forms them: the sweep file's params, then the
    command-line overrides (a key given again replaces the file's value, which narrows the grid).
    Returns one ``{key: value}`` dict per job."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()] + list(overrides))
    (batch,) = BasicSweeper.split_arguments(parsed, max_batch_size=None)
    return [dict(o.split("=", 1) for o in job) for job in batch]


def override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def overrides_for(sweep: str, overrides: Sequence[str]) -> list[str]:
    """The overrides that apply to one sweep: its narrowing grid keys (``NARROWS``) and every
    override that is not a grid key (``study=``, ``paths.*``, ``hydra/launcher=slurm`` ...)."""
    keep = NARROWS.get(sweep, GRID_KEYS)
    return [o for o in overrides if override_key(o) not in GRID_KEYS or override_key(o) in keep]


def grid_points(sweeps: Iterable[str] = SWEEPS, overrides: Sequence[str] = ()) -> list[GridPoint]:
    """Every run of the given sweeps (narrowed by ``overrides``), in launch order, without repeats.
    Overrides that are not grid keys (``study=``, ``paths.*``, ``hydra/launcher=``) are ignored."""
    base = default_choices()
    seen: dict[str, GridPoint] = {}
    for name in sweeps:
        grid_ov = [o for o in overrides_for(name, overrides) if override_key(o) in GRID_KEYS]
        for job in expand(sweep_params(name), grid_ov):
            gp = GridPoint(**{k: job.get(k, base.get(k, "none")) for k in GRID_KEYS})
            seen.setdefault(gp.subdir, gp)
    return list(seen.values())
