"""The demo's stage scheduler: dependencies respected, lanes side by side, a failure stops the rest.

Each stage appends "start <name>" and "end <name>" to one journal file, so the order of events is
read from the journal, never from clocks."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from project import copy_conf
from transfersep.demo.run import Stage, run_stages, study_stages


def _writer(journal: Path, name: str, sleep: float = 0.0, code: int = 0, meet: str | None = None) -> list[str]:
    """A stage that journals its start, waits (``sleep`` seconds, or until stage ``meet`` has started:
    exit 9 if it never does within 60 s), journals its end and exits with ``code``."""
    prog = f"""
import sys, time
from pathlib import Path
j = Path({str(journal)!r})
def note(what):
    with open(j, "a") as f:
        f.write(what + "\\n")
note("start {name}")
meet = {meet!r}
if meet:
    deadline = time.monotonic() + 60
    while "start " + meet not in j.read_text().splitlines():
        if time.monotonic() > deadline:
            sys.exit(9)
        time.sleep(0.02)
time.sleep({sleep})
note("end {name}")
print("bye from {name}")
sys.exit({code})
"""
    return [sys.executable, "-c", prog]


def _events(journal: Path) -> list[str]:
    return journal.read_text().splitlines()


def test_dependencies_and_concurrency(tmp_path):
    j = tmp_path / "journal"
    run_stages(
        [
            # a and b each wait for the other to start: with two lanes they run side by side
            Stage("a", _writer(j, "a", meet="b")),
            Stage("b", _writer(j, "b", meet="a")),
            Stage("c", _writer(j, "c"), after=("a",)),
            Stage("d", _writer(j, "d"), after=("b", "c")),
        ],
        tmp_path / "logs",
        jobs=2,
        threads=1,
    )
    ev = _events(j)
    assert sorted(ev) == sorted(f"{w} {s}" for s in "abcd" for w in ("start", "end"))
    assert ev.index("start c") > ev.index("end a")
    assert ev.index("start d") > max(ev.index("end b"), ev.index("end c"))
    assert "bye from d" in (tmp_path / "logs" / "d.log").read_text()


def test_one_job_at_a_time(tmp_path):
    j = tmp_path / "journal"
    run_stages(
        [Stage("a", _writer(j, "a", 0.3)), Stage("b", _writer(j, "b", 0.3))], tmp_path / "logs", jobs=1, threads=1
    )
    ev = _events(j)
    assert ev in (["start a", "end a", "start b", "end b"], ["start b", "end b", "start a", "end a"])


def test_failure_stops_the_others_and_shows_the_log(tmp_path):
    j = tmp_path / "journal"
    with pytest.raises(SystemExit, match=r"(?s)bye from bad.*stage 'bad' failed \(exit 3\)"):
        run_stages(
            [
                Stage("slow", _writer(j, "slow", 300.0)),
                Stage("bad", _writer(j, "bad", code=3, meet="slow")),
                Stage("never", _writer(j, "never"), after=("bad",)),
            ],
            tmp_path / "logs",
            jobs=2,
            threads=1,
        )
    ev = _events(j)
    assert "start slow" in ev and "end slow" not in ev  # stopped, not waited for
    assert "start never" not in ev


def test_demo_stages_follow_the_grid(tmp_path, monkeypatch):
    narrow = ["pretrain=slakh", "augment=none", "downstream=bach10,dagstuhl"]
    stages = study_stages(["train", "-m"], narrow, ["report"], ["bach10", "dagstuhl"])
    # the paper's stages: pretraining and the independent baseline lanes first, then the stages
    # that wait for pretraining, then the report after everything
    assert [(s.name, s.after) for s in stages[:-1]] == [
        ("pretrain", ()),
        ("baseline-bach10", ()),
        ("baseline-dagstuhl", ()),
        ("zeroshot", ("pretrain",)),
        ("finetune", ("pretrain",)),
    ]
    assert stages[-1].name == "report" and set(stages[-1].after) == {s.name for s in stages[:-1]}
    cmds = {s.name: s.cmd for s in stages}
    assert cmds["pretrain"] == ["train", "-m", "+sweeps=pretrain", "pretrain=slakh", "augment=none"]
    assert cmds["baseline-dagstuhl"] == ["train", "-m", "+sweeps=baseline", "downstream=dagstuhl", "fold=0"]
    assert cmds["finetune"] == ["train", "-m", "+sweeps=finetune", *narrow]
    # replicated: one baseline lane per downstream set and fold, every lane with all the seeds
    reps = study_stages(["train", "-m"], [*narrow, "seed=0,1,2", "fold=0,1"], ["report"], ["bach10"])
    lanes = {s.name: s.cmd for s in reps if s.name.startswith("baseline")}
    assert lanes == {
        f"baseline-bach10-fold{f}": ["train", "-m", "+sweeps=baseline", "seed=0,1,2", "downstream=bach10", f"fold={f}"]
        for f in (0, 1)
    }
    assert {"seed=0,1,2", "fold=0,1"} <= set(next(s.cmd for s in reps if s.name == "finetune"))

    # a grid without the zero-shot stage: the demo runs none
    monkeypatch.setenv("TRANSFERSEP_CONF", str(copy_conf(tmp_path, lambda g: g["stages"].pop("zeroshot"))))
    names = [s.name for s in study_stages(["train", "-m"], narrow, ["report"], ["bach10"])]
    assert names == ["pretrain", "baseline-bach10", "finetune", "report"]
