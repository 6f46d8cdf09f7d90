"""The checks of a fine-tune's or probe's parent before anything is written: the checkpoint it starts
from exists, is readable, and has the model sizes the run's config says (one line each, with the fix).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transfersep.run.errors import CheckpointError, MissingCheckpointError, ModelSizeError, one_line
from transfersep.run.suggest import train_suggestion


def check_checkpoint(path: Path, what: str, fix: str) -> None:
    """Refuse a damaged Lightning checkpoint before a run starts (``CheckpointError``, one line).

    Lightning checkpoints are zip archives (``torch.save``); reading every member's CRC finds a
    truncated or overwritten file without unpickling anything."""
    import zipfile

    if not path.is_file():
        return
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise CheckpointError(f"{path}: {what} is damaged ({e}); {fix}") from None
    if bad is not None:
        raise CheckpointError(f"{path}: {what} is damaged (member {bad} fails its checksum); {fix}")


def check_sizes(path: Path, model: dict, what: str, fix: str) -> None:
    """Refuse (``ModelSizeError``, one line naming each key with both values) a run whose model
    config contradicts the sizes ``path`` (a package or checkpoint) records: the network is built
    from the file, so the run's recorded config must say what it trains. An unreadable file is a
    ``CheckpointError``."""
    from transfersep.model.loading import recorded_model, size_conflicts
    from transfersep.model.package import ModelLoadError

    try:
        recorded = recorded_model(path)
    except ModelLoadError as e:
        raise CheckpointError(one_line(e)) from None
    bad = size_conflicts(recorded, model)
    if bad:
        has = ", ".join(f"model.{k}={r}" for k, r, _ in bad)
        says = ", ".join(f"model.{k}={w}" for k, _, w in bad)
        raise ModelSizeError(
            f"{path}: {what} is a ChimeraNet with {has}, this run's config says {says}; {fix}: "
            f"add {' '.join(f'model.{k}={r}' for k, r, _ in bad)}"
        )


def parent_problem(plan: Any, study: str) -> str | None:
    """The one-line reason a fine-tune cannot start (its parent missing), or None; a parent
    checkpoint that exists but is damaged raises ``CheckpointError``, one whose model sizes the
    run's config contradicts ``ModelSizeError`` (``check_sizes``)."""
    if plan.parent_ckpt is None:
        return None
    if plan.parent_ckpt.exists():
        if plan.parent_ckpt.suffix != ".safetensors":  # packages carry their own checksum (ModelLoadError)
            fix = (
                "point init_from at a good model package or checkpoint"
                if plan.init_from is not None
                else f"train its run again: {train_suggestion(_parent_grid(plan), study, rerun=True)}"
            )
            check_checkpoint(plan.parent_ckpt, "the pretrained checkpoint", fix)
        if getattr(plan, "model", None):
            what, fix = (
                ("the init_from model", "run with the sizes it was trained with")
                if plan.init_from is not None
                else ("the pretrained model of this grid point", "run with the sizes of its pretraining")
            )
            check_sizes(plan.parent_ckpt, plan.model, what, fix)
        return None
    if plan.init_from is not None:
        return (
            f"init_from={plan.init_from}: no such file; point init_from at an existing model package "
            "(.safetensors, see `transfersep export`) or checkpoint (.ckpt)"
        )
    needs = f"fine-tuning {plan.subdir} needs the pretrained checkpoint {plan.parent_ckpt}, which does not exist"
    if plan.parent_step is not None and _finished(plan.parent_dir):
        # a finished pretraining is skipped by a plain relaunch; only training it again writes its
        # kept checkpoints again (seeded: the same weights, so its other children stay current)
        cmd = train_suggestion(_parent_grid(plan), study, rerun=True)
        return f"{needs}; its pretraining finished without it (removed since): train it again with: {cmd}"
    return f"{needs}; produce it first with: {train_suggestion(_parent_grid(plan), study)}"


def _finished(run_dir: Path | None) -> bool:
    from transfersep.run.records import finished

    return run_dir is not None and finished(run_dir)


def _parent_grid(plan: Any) -> dict[str, str]:
    """The grid keys of the pretraining a fine-tune starts from, as a command names them (the corpus,
    and the objective beside it when it is not dc: ``pretrain=slakh objective=mixit``)."""
    parent = plan.point.parent
    objective = {"objective": parent.objective} if parent.objective != "dc" else {}
    return {"pretrain": parent.pretrain, **objective, "augment": parent.augment}


def check_parent(plan: Any, study: str) -> None:
    """Refuse a run whose parent is missing or damaged, in one line (``MissingCheckpointError`` ...);
    a model package given as ``init_from`` is loaded once here so a damaged one is refused now, not mid-run."""
    problem = parent_problem(plan, study)
    if problem:
        raise MissingCheckpointError(problem)
    if plan.init_from is not None and plan.init_from.suffix == ".safetensors":
        from transfersep.model.loading import load_model

        load_model(plan.init_from)
