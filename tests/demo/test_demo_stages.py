"""The demo's stage scheduler: dependencies respected, lanes side by side, a failure stops the rest."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from project import copy_conf
from transfersep.demo.run import Stage, run_stages, study_stages


def _writer(path: Path, sleep: float, code: int = 0) -> list[str]:
    # appends "start <t>" and "end <t>" (wall clock) to path; exits with code
    prog = (
        f"import time,sys; p={str(path)!r}; open(p,'a').write(f'start {{time.time()}}\\n'); "
        f"time.sleep({sleep}); open(p,'a').write(f'end {{time.time()}}\\n'); print('bye from', p); "
        f"sys.exit({code})"
    )
    return [sys.executable, "-c", prog]


def _times(path: Path) -> dict[str, float]:
    return {k: float(v) for k, v in (line.split() for line in path.read_text().splitlines())}


def test_dependencies_and_concurrency(tmp_path):
    a, b, c, d = (tmp_path / n for n in "abcd")
    run_stages(
        [
            Stage("a", _writer(a, 1.0)),
            Stage("b", _writer(b, 1.0)),
            Stage("c", _writer(c, 0.2), after=("a",)),
            Stage("d", _writer(d, 0.1), after=("b", "c")),
        ],
        tmp_path / "logs",
        jobs=2,
        threads=1,
    )
    ta, tb, tc, td = (_times(p) for p in (a, b, c, d))
    assert tb["start"] < ta["end"] and ta["start"] < tb["end"]  # a and b overlapped
    assert tc["start"] >= ta["end"]
    assert td["start"] >= max(tb["end"], tc["end"])
    assert "bye from" in (tmp_path / "logs" / "d.log").read_text()


def test_one_job_at_a_time(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    run_stages([Stage("a", _writer(a, 0.3)), Stage("b", _writer(b, 0.3))], tmp_path / "logs", jobs=1, threads=1)
    ta, tb = _times(a), _times(b)
    assert tb["start"] >= ta["end"] or ta["start"] >= tb["end"]


def test_failure_stops_the_others_and_shows_the_log(tmp_path):
    slow, bad = tmp_path / "slow", tmp_path / "bad"
    t0 = time.time()
    with pytest.raises(SystemExit, match=r"(?s)bye from .*bad.*stage 'bad' failed \(exit 3\)"):
        run_stages(
            [
                Stage("slow", _writer(slow, 30.0)),
                Stage("bad", _writer(bad, 0.1, code=3)),
                Stage("never", _writer(tmp_path / "never", 0.0), after=("bad",)),
            ],
            tmp_path / "logs",
            jobs=2,
            threads=1,
        )
    assert time.time() - t0 < 20  # the 30-s stage was stopped
    assert "end" not in slow.read_text()
    assert not (tmp_path / "never").exists()


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
    assert cmds["baseline-dagstuhl"] == ["train", "-m", "+sweeps=baseline", "downstream=dagstuhl"]
    assert cmds["finetune"] == ["train", "-m", "+sweeps=finetune", *narrow]

    # a grid without the zero-shot stage: the demo runs none
    monkeypatch.setenv("TRANSFERSEP_CONF", str(copy_conf(tmp_path, lambda g: g["stages"].pop("zeroshot"))))
    names = [s.name for s in study_stages(["train", "-m"], narrow, ["report"], ["bach10"])]
    assert names == ["pretrain", "baseline-bach10", "finetune", "report"]
