"""Provenance of fine-tunes: what a fine-tune records of its parent, a redone pretraining making
its fine-tunes and zero-shot probes stale (status, report) and a relaunch redoing them (tiny model,
in-process runs)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from project import compose
from transfersep.model.export import export_model
from transfersep.model.package import weights_digest
from transfersep.report.build import write_report
from transfersep.report.scan import scan
from transfersep.run.lifecycle import run
from transfersep.run.point import GridPoint
from transfersep.study.status import study_status

FT = "finetune/slakh-none-whole-bach10"
NARROW = ["pretrain=slakh", "augment=none", "finetune=whole", "downstream=bach10"]


def cfg(runs: Path, *overrides: str, wandb: bool = False):
    return compose(
        [
            "experiment=tiny",
            "data.generated=true",
            f"logger={'default' if wandb else 'csv'}",
            "pretrain=slakh",
            *overrides,
        ],
        runs,
    )


def digest_of(ckpt: Path) -> str:
    """The weights digest computed here from the checkpoint file, independently of the run's books."""
    sd = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    return weights_digest({k[len("model.") :]: v for k, v in sd.items() if k.startswith("model.")})


def states(study: Path) -> dict[str, tuple[str, str]]:
    return {r.subdir: (r.state, r.detail) for r in study_status(study, ["pretrain", "finetune"], NARROW)}


def test_redone_pretraining_makes_finetunes_stale_and_a_relaunch_retrains(tmp_path: Path) -> None:
    runs, study = tmp_path / "runs", tmp_path / "runs" / "tiny"
    parent, ft = study / "pretrain" / "slakh-none", study / FT
    run(cfg(runs))
    first = digest_of(parent / "final.ckpt")
    assert json.loads((parent / "status.json").read_text())["weights_sha256"] == first

    run(cfg(runs, "downstream=bach10", wandb=True))
    st = json.loads((ft / "status.json").read_text())
    rec = st["parent"]
    assert rec["kind"] == "run" and rec["path"] == str((parent / "final.ckpt").resolve())
    assert rec["weights_sha256"] == first and rec["subdir"] == "pretrain/slakh-none" and rec["study"] == "tiny"
    assert rec["grid_point"] == {
        "stage": "pretrain",
        "pretrain": "slakh",
        "augment": "none",
        "finetune": "none",
        "downstream": "none",
    }
    result = json.loads((ft / "result.json").read_text())
    assert result["extra"]["parent"] == rec
    assert result["extra"]["evaluated_checkpoint"] == "last" and result["extra"]["evaluated_step"] == 4
    (old_wandb,) = (ft / "wandb").glob("offline-run-*")
    assert first.encode() in next(old_wandb.glob("run-*.wandb")).read_bytes()  # the W&B config has it
    assert states(study)[FT][0] == "finished"
    found, problems = scan(study)
    assert GridPoint("slakh", "none", "whole", "bach10") in found and not problems
    old_weights = torch.load(ft / "final.ckpt", map_location="cpu", weights_only=True)["state_dict"]

    # the pretraining is redone (another learning rate: other weights; another seed is another replicate's folder)
    run(cfg(runs, "rerun=true", "optim.lr=0.002"))
    second = digest_of(parent / "final.ckpt")
    assert second != first
    state, detail = states(study)[FT]
    assert state == "stale" and first[:12] in detail and second[:12] in detail
    assert states(study)["pretrain/slakh-none"][0] == "finished"
    found, problems = scan(study)
    assert GridPoint("slakh", "none", "whole", "bach10") not in found
    assert len(problems) == 1 and problems[0].startswith(f"left out {FT}: stale")
    run(
        compose(["experiment=tiny", "data.generated=true", "logger=csv", "pretrain=none", "downstream=bach10"], runs)
    )  # (a report needs one run to draw)
    report = write_report(study, tmp_path / "report")
    assert any(p.startswith(f"left out {FT}: stale") for p in report["problems"])
    assert f"left out {FT}: stale" in Path(report["report"]).read_text()

    # a relaunch sets the old outputs aside and trains again from the new parent
    out = run(cfg(runs, "downstream=bach10", wandb=True))
    assert not out.get("skipped")
    (aside,) = (ft / "superseded").iterdir()
    assert {p.name for p in aside.iterdir()} >= {
        "final.ckpt",
        "checkpoints",
        "result.superseded.json",
        "wandb",
        "superseded.json",
        "scores.csv",
    }
    kept = torch.load(aside / "final.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    assert all(torch.equal(kept[k], old_weights[k]) for k in old_weights)
    new_st = json.loads((ft / "status.json").read_text())
    assert new_st["state"] == "finished" and new_st["parent"]["weights_sha256"] == second
    new = torch.load(ft / "final.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    assert any(not torch.equal(new[k], old_weights[k]) for k in old_weights)
    (new_wandb,) = (ft / "wandb").glob("offline-run-*")
    assert new_wandb.name.rsplit("-", 1)[1] != old_wandb.name.rsplit("-", 1)[1]  # another W&B run
    assert states(study)[FT][0] == "finished"
    found, problems = scan(study)
    assert found[GridPoint("slakh", "none", "whole", "bach10")].result["extra"]["parent"]["weights_sha256"] == second
    assert not problems


def test_init_from_run_is_keyed_by_the_package_it_loaded(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    run(cfg(runs, "study=elsewhere", "augment=pitch"))
    pkg = runs / "elsewhere" / "pretrain" / "slakh-pitch" / "model.safetensors"
    # labelled pretrain=musdb on the command line, but the package is Slakh with pitch shift
    run(
        compose(
            [
                "experiment=tiny",
                "data.generated=true",
                "logger=csv",
                "pretrain=musdb",
                "downstream=bach10",
                f"init_from={pkg}",
            ],
            runs,
        )
    )
    ft = runs / "tiny" / "finetune" / "musdb-none-whole-bach10"
    rec = json.loads((ft / "status.json").read_text())["parent"]
    assert rec["kind"] == "package" and rec["study"] == "elsewhere"
    assert rec["grid_point"]["pretrain"] == "slakh" and rec["grid_point"]["augment"] == "pitch"
    found, problems = scan(runs / "tiny")
    assert list(found) == [GridPoint("slakh", "pitch", "whole", "bach10")]
    assert not problems
    assert found[GridPoint("slakh", "pitch", "whole", "bach10")].notes == [
        "built on slakh-pitch of study elsewhere (init_from)"
    ]  # the report lists it with the run

    # the package is replaced by another model: the fine-tune is stale
    export_model(
        runs / "tiny" / "finetune" / "musdb-none-whole-bach10" / "final.ckpt",
        pkg,
        extra={"grid_point": rec["grid_point"], "study": "elsewhere"},
    )
    found, problems = scan(runs / "tiny")
    assert not found and "stale" in problems[0]


def test_a_zero_shot_probe_follows_its_pretraining(tmp_path: Path) -> None:
    runs, study = tmp_path / "runs", tmp_path / "runs" / "tiny"
    parent, zs = study / "pretrain" / "slakh-none", study / "zeroshot" / "slakh-none-bach10"
    run(cfg(runs))
    first = digest_of(parent / "final.ckpt")
    run(cfg(runs, "downstream=bach10", "finetune=zeroshot"))
    assert json.loads((zs / "result.json").read_text())["extra"]["parent"]["weights_sha256"] == first
    key = GridPoint.zeroshot("slakh", "none", "bach10")
    assert key in scan(study)[0]

    run(cfg(runs, "rerun=true", "optim.lr=0.002"))  # the pretraining is redone into other weights
    second = digest_of(parent / "final.ckpt")
    rows = {r.subdir: r for r in study_status(study, ["zeroshot"], [*NARROW, "downstream=bach10"])}
    assert rows["zeroshot/slakh-none-bach10"].state == "stale"
    found, problems = scan(study)
    assert key not in found and problems[0].startswith("left out zeroshot/slakh-none-bach10: stale")

    out = run(cfg(runs, "downstream=bach10", "finetune=zeroshot"))  # the relaunch probes the new model
    assert not out.get("skipped")
    assert json.loads((zs / "result.json").read_text())["extra"]["parent"]["weights_sha256"] == second
    assert scan(study)[0][key].result["extra"]["parent"]["weights_sha256"] == second


def test_a_parent_killed_mid_retrain_or_deleted_orphans_its_children(tmp_path: Path) -> None:
    runs, study = tmp_path / "runs", tmp_path / "runs" / "tiny"
    parent = study / "pretrain" / "slakh-none"
    run(cfg(runs))
    run(cfg(runs, "downstream=bach10"))
    run(
        compose(["experiment=tiny", "data.generated=true", "logger=csv", "pretrain=none", "downstream=bach10"], runs)
    )  # (a report needs one run to draw)
    key = GridPoint("slakh", "none", "whole", "bach10")
    assert states(study)[FT][0] == "finished" and key in scan(study)[0]

    # a retrain of the parent killed after it started: final.ckpt removed, status "running", the
    # old package still there (what `rerun=true` leaves when SIGKILLed)
    st = json.loads((parent / "status.json").read_text())
    (parent / "final.ckpt").unlink()
    (parent / "status.json").write_text(json.dumps({**st, "state": "running", "pid": 999999999}))
    assert (parent / "model.safetensors").exists()
    state, detail = states(study)[FT]
    assert state == "stale" and "orphaned" in detail and "no final.ckpt (state running" in detail
    found, problems = scan(study)
    assert key not in found and problems[0].startswith(f"left out {FT}: stale, orphaned")
    report = write_report(study, tmp_path / "report")
    assert f"left out {FT}: stale, orphaned" in Path(report["report"]).read_text()

    # the parent deleted altogether
    import shutil

    shutil.rmtree(parent)
    state, detail = states(study)[FT]
    assert state == "stale" and "is gone" in detail and "train its parent" in detail
    assert key not in scan(study)[0]


def test_a_child_records_the_digest_it_loaded_when_it_loads_it(tmp_path: Path, monkeypatch) -> None:
    """The parent's books say one digest, its final.ckpt holds other weights (replaced between the
    check and the load): a child interrupted right after loading has the loaded digest in its
    status.json, so a relaunch judges it by what it trained from."""
    import transfersep.run.fit as fit_mod

    runs, study = tmp_path / "runs", tmp_path / "runs" / "tiny"
    parent, ft = study / "pretrain" / "slakh-none", study / FT
    run(cfg(runs))
    st = json.loads((parent / "status.json").read_text())
    (parent / "status.json").write_text(json.dumps({**st, "weights_sha256": "0" * 64}))

    def interrupted(*a, **k):
        raise KeyboardInterrupt  # Ctrl-C right after loading: the run is "interrupted", nothing else written

    monkeypatch.setattr(fit_mod, "build_loggers", interrupted)
    try:
        run(cfg(runs, "downstream=bach10"))
    except KeyboardInterrupt:
        pass
    rec = json.loads((ft / "status.json").read_text())
    assert rec["state"] == "interrupted" and rec["parent"]["weights_sha256"] == digest_of(parent / "final.ckpt")


def test_a_launch_checks_its_parent_once(tmp_path: Path, monkeypatch) -> None:
    from transfersep.run import lifecycle

    runs = tmp_path / "runs"
    run(cfg(runs))
    checked = []
    real = lifecycle.check_parent
    monkeypatch.setattr(lifecycle, "check_parent", lambda plan, study: checked.append(plan.subdir) or real(plan, study))
    run(cfg(runs, "downstream=bach10", "finetune=zeroshot"))
    assert checked == ["zeroshot/slakh-none-bach10"]
