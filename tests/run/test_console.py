"""Progress reports, the console/log split and suggested commands (transfersep.run.console, errors, suggest)."""

from __future__ import annotations

import logging

import pytest

from transfersep.run import console, errors, suggest


def test_plain_progress_lines_every_tenth_with_rate_and_eta(monkeypatch, caplog):
    clock = iter([0.0] + [2.0 * k for k in range(1, 21)])  # one step every 2 s
    monkeypatch.setattr(console.time, "monotonic", lambda: next(clock))
    p = console.PlainProgress("training", 20, every_s=1e9)
    with caplog.at_level(logging.INFO, logger="transfersep"):
        for step in range(1, 21):
            p.update(step)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 10  # steps 2, 4, ..., 20: each tenth once
    assert lines[0] == "training: 2/20 steps (10%), 0.50 steps/s, ETA 36s"
    assert lines[4] == "training: 10/20 steps (50%), 0.50 steps/s, ETA 20s"
    assert lines[-1] == "training: 20/20 steps (100%), 0.50 steps/s, ETA 0s"


def test_plain_progress_counts_a_resumed_run_from_its_step(monkeypatch, caplog):
    clock = iter([100.0, 110.0])
    monkeypatch.setattr(console.time, "monotonic", lambda: next(clock))
    p = console.PlainProgress("training", 1000, start=600)
    with caplog.at_level(logging.INFO, logger="transfersep"):
        p.update(700)  # 100 steps in 10 s: 10 steps/s, 300 left
    assert caplog.records[0].getMessage() == "training: 700/1000 steps (70%), 10.00 steps/s, ETA 30s"


def test_bar_on_a_terminal_lines_otherwise(monkeypatch):
    from lightning.pytorch.callbacks import TQDMProgressBar

    monkeypatch.setattr(console, "interactive", lambda: True)
    bar, callbacks = console.training_progress(True)
    assert bar is True and [type(c) for c in callbacks] == [TQDMProgressBar]
    monkeypatch.setattr(console, "interactive", lambda: False)
    bar, callbacks = console.training_progress(True)
    assert bar is False and len(callbacks) == 1
    assert console.training_progress(False) == (False, [])
    calls = []
    wrapped, close = console.evaluation_progress(lambda m: calls.append(m) or m, n_items=10, batch_size=4, enabled=True)
    assert [wrapped(k) for k in range(3)] == [0, 1, 2] and calls == [0, 1, 2]
    close()


@pytest.mark.parametrize(
    "name, level, stdout, stderr",
    [
        ("transfersep", logging.INFO, True, False),
        ("transfersep.data", logging.INFO, True, False),
        ("lightning.pytorch.utilities.rank_zero", logging.INFO, False, False),  # train.log only
        ("py.warnings", logging.WARNING, False, True),
        ("transfersep", logging.ERROR, False, True),
        ("transfersep.trace", logging.ERROR, False, False),  # tracebacks: train.log only
    ],
)
def test_console_filter(name, level, stdout, stderr):
    rec = logging.LogRecord(name, level, __file__, 1, "m", None, None)
    assert console.ConsoleFilter(max_level="INFO").filter(rec) is stdout
    assert console.ConsoleFilter(min_level="WARNING").filter(rec) is stderr


def test_suggested_command_keeps_the_users_overrides_only():
    given = [
        "experiment=tiny",
        "pretrain=musdb",
        "augment=pitch",
        "downstream=bach10",
        "finetune=mask",
        "paths.runs_dir=/scratch/my runs",
        "data.generated=true",
        "+model.hidden_size=32",
        "seed=3",
        "init_from=x.ckpt",
        "rerun=true",
        "downstream.dataset.sources=[a,b]",
        "hydra/launcher=slurm",
    ]
    cmd = suggest.train_suggestion({"pretrain": "musdb", "augment": "pitch"}, "tiny", given)
    assert cmd == (
        "transfersep train pretrain=musdb augment=pitch study=tiny experiment=tiny "
        "'paths.runs_dir=/scratch/my runs' data.generated=true +model.hidden_size=32 seed=3"
    )
    # a study the user named is carried once, as given
    assert (
        suggest.train_suggestion({"pretrain": "slakh"}, "paper", ["study=mine"])
        == "transfersep train pretrain=slakh study=mine"
    )


def test_config_error_lines():
    from omegaconf import OmegaConf

    from transfersep.run.typed import check_config

    cfg = OmegaConf.create({"data": {"batch_size": 2.5}, "seed": 0})
    with pytest.raises(errors.ConfigValueError, match=r"^data.batch_size=2.5: expected an integer"):
        check_config(cfg)
    with pytest.raises(errors.ConfigValueError, match=r"loss.alpha=1.5: must be in \[0, 1\]"):
        check_config(OmegaConf.create({"loss": {"alpha": 1.5}}))
    check_config(OmegaConf.create({"loss": {"alpha": 0.0}, "data": {"batch_size": 24}}))
    with pytest.raises(errors.ConfigValueError, match=r"^pretrain.objective='mixt': expected one of dc, mixit"):
        check_config(OmegaConf.create({"pretrain": {"objective": "mixt"}}))
    with pytest.raises(errors.ConfigValueError, match=r"^pretrain.mixit.outputs=1: must be at least 2"):
        check_config(OmegaConf.create({"pretrain": {"objective": "mixit", "mixit": {"outputs": 1}}}))
    with pytest.raises(errors.ConfigValueError, match=r"^pretrain.dataset.precache='yes': expected true or false"):
        check_config(OmegaConf.create({"pretrain": {"dataset": {"precache": "yes"}}}))
    check_config(OmegaConf.create({"pretrain": {"objective": "mixit", "mixit": {"outputs": 2, "gain_db": 0.0}}}))
    assert errors.one_line(ValueError("first\n    second\n")) == "first; second"
