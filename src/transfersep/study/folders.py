"""Which study a folder is: the report and ``transfersep status`` never mix runs of two studies.

A study folder is ``<paths.runs_dir>/<study>``; its runs lie in ``<stage>/<grid point>/`` (the
stages of ``sweeps/grid.yaml``) with a ``status.json`` (every run) or ``result.json`` (evaluated
runs). Pointed at a folder that is not a study itself, the commands look for studies below it:
exactly one is used, several are listed and refused (``SeveralStudies``, exit status 2), never
paired. Light imports only (the status command answers ``-h`` at once).
"""

from __future__ import annotations

from pathlib import Path

from transfersep.files import RESULT, STATUS
from transfersep.study.grid import stage_names

RUN_FILES = (STATUS, RESULT)


class SeveralStudies(ValueError):
    """The folder holds runs of more than one study."""


def studies_below(root: str | Path) -> list[Path]:
    """Every study folder at or below ``root`` (a folder holding ``<stage>/<run>/status.json`` or
    ``result.json``), sorted."""
    root = Path(root)
    stages = set(stage_names())
    found: set[Path] = set()
    for name in RUN_FILES:
        for f in root.rglob(name):
            study = f.parent.parent.parent
            if f.parent.parent.name in stages and (study == root or root in study.parents):
                found.add(study)
    return sorted(found)


def is_study(folder: str | Path) -> bool:
    return any((Path(folder) / s).is_dir() for s in stage_names())


def run_results(study_dir: str | Path) -> list[Path]:
    """The ``result.json`` of every run of a study (``<stage>/<run>/result.json``); a folder
    without that layout is searched recursively (hand-made layouts)."""
    study_dir = Path(study_dir)
    if is_study(study_dir):
        return sorted(p for s in stage_names() for p in study_dir.glob(f"{s}/*/{RESULT}"))
    return sorted(study_dir.rglob(RESULT))


def resolve_study(root: str | Path) -> Path:
    """The study folder to read for ``root``: ``root`` itself when it is one (or holds no run yet),
    the one study below it, or ``SeveralStudies`` naming each."""
    root = Path(root)
    if is_study(root):
        return root
    studies = studies_below(root)
    if not studies:
        return root
    if len(studies) == 1:
        return studies[0]
    names = ", ".join(str(s.relative_to(root)) for s in studies)
    raise SeveralStudies(
        f"{root} holds {len(studies)} studies ({names}); runs of different studies are never "
        f"compared: give one of them, e.g. {studies[0]}"
    )
