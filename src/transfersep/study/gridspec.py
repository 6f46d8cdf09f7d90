"""The study's grid in memory: its axes, labels, stages and exclusions, as ``sweeps/grid.yaml`` states
them (read and checked by ``transfersep.study.gridcheck``, loaded by ``transfersep.study.grid``)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from transfersep.run.point import GRID_KEYS, REPLICATE_KEYS, SWEPT_KEYS, GridPoint, pretraining


class GridError(ValueError):
    """``sweeps/grid.yaml`` is malformed (the message names the file and the key)."""


@dataclass(frozen=True)
class Stage:
    name: str
    sweeps: tuple[str, ...]  # the axes this stage's multirun sweeps (and a command line narrows)
    fixed: dict[str, str]  # keys set to one value (the others take conf/train.yaml's defaults)
    waits_for: str | None  # the stage whose finished runs this one starts from


@dataclass(frozen=True)
class Grid:
    path: Path
    axes: dict[str, tuple[str, ...]]
    labels: dict[str, dict[str, str]]
    stages: dict[str, Stage]  # in launch order
    defaults: dict[str, str]  # the grid keys' defaults of conf/train.yaml
    exclude: tuple[dict[str, frozenset[str]], ...] = ()  # rules: axis -> values; a point matching all is no run

    def excluded(self, point: GridPoint | dict[str, str]) -> str | None:
        """Why ``point`` is left out of the study (the rule of ``exclude`` it matches, or an objective
        that reads no stems under an augmentation that needs them, as text), or None. A dict may name
        the pretraining as records do (``pretrain: slakh_mixit``, no ``objective``) and some keys only."""
        from transfersep.model import objectives

        values = point if isinstance(point, dict) else {k: getattr(point, k) for k in GRID_KEYS}
        values = {k: str(v) for k, v in values.items()}
        if "objective" not in values and "pretrain" in values:
            values["pretrain"], values["objective"] = objectives.split_name(values["pretrain"])
        for rule in self.exclude:
            if all(values.get(k, self.defaults.get(k)) in vs for k, vs in rule.items()):
                named = " and ".join(f"{k}={values.get(k, self.defaults.get(k))}" for k in rule)
                return f"{self.path} excludes {named} (its exclude list)"
        if values.get("pretrain", "none") != "none" and values.get("objective", "dc") in objectives.names():
            why = objectives.excluded(values.get("objective", "dc"), _incoherent(self.path, values.get("augment")))
            if why:
                return f"augment={values.get('augment')} with objective={values.get('objective')}: {why}"
        return None

    @property
    def pretrainings(self) -> tuple[str, ...]:
        """The pretrainings of the grid as folders and records name them (corpus and objective:
        ``slakh``, ``slakh_mixit``), objective by objective in the grid's order, less those its
        exclude list leaves out whatever the augmentation."""
        out = []
        for o in self.axes["objective"]:
            for c in self.axes["pretrain"]:
                rules = [r for r in self.exclude if set(r) <= {"pretrain", "objective"}]
                if not any(all({"pretrain": c, "objective": o}[k] in vs for k, vs in r.items()) for r in rules):
                    out.append(pretraining(c, o))
        return tuple(out)

    def label(self, axis: str, value: str) -> str:
        """How figures and tables name ``value`` of ``axis`` (its own name when it has no label); a
        pretraining by an objective other than dc is named by its corpus and its objective
        ("Slakh mixtures, MixIT (self-supervised)" where the objective reads no stems)."""
        from transfersep.model import objectives

        own = self.labels.get(axis, {}).get(value)
        if own is not None or axis != "pretrain":
            return own if own is not None else value
        corpus, objective = objectives.split_name(value)
        if objective == "dc":
            return value
        what = self.labels.get("objective", {}).get(objective, objective)
        mixtures = "" if objectives.get(objective).reads_stems else " mixtures"
        return f"{self.label('pretrain', corpus)}{mixtures}, {what}"

    def stage(self, name: str) -> Stage:
        if name not in self.stages:
            raise GridError(f"unknown stage {name!r}; the stages of {self.path} are {', '.join(self.stages)}")
        return self.stages[name]

    def sweep_params(self, name: str) -> dict[str, str]:
        """``hydra.sweeper.params`` of stage ``name``: its swept axes as ``a,b,c`` and its fixed keys."""
        st = self.stage(name)
        out = {}
        for k in SWEPT_KEYS:
            if k in st.sweeps:
                out[k] = ",".join(self.axes[k])
            elif k in st.fixed:
                out[k] = st.fixed[k]
        return out

    def point(self, name: str, values: dict[str, str]) -> GridPoint:
        """The grid point of stage ``name`` with ``values`` for (some of) its swept keys."""
        st = self.stage(name)
        point = {k: values.get(k, st.fixed.get(k, self.defaults.get(k, "none"))) for k in GRID_KEYS}
        for k in REPLICATE_KEYS:  # a stage that does not sweep a replicate key takes replicate 0
            point[k] = int(values.get(k, st.fixed.get(k, 0))) if k in st.sweeps or k in st.fixed else 0
        return GridPoint(**point)


def _incoherent(grid_file: Path, augment: str | None) -> bool:
    """Whether ``conf/augment/<augment>.yaml`` mixes incoherently (draws each stem from another track)."""
    if augment in (None, "none"):
        return False
    return _augment_incoherent(grid_file.parent.parent / "augment" / f"{augment}.yaml")


@lru_cache(maxsize=32)
def _augment_incoherent(path: Path) -> bool:
    try:
        return bool((yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("incoherent"))
    except (OSError, yaml.YAMLError, AttributeError):
        return False
