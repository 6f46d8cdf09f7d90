"""A trained run's summary and result.json carry the floor its SI-SDR reads against: the mixture
itself as every source's estimate, computed as the zero-shot probe computes it."""

from __future__ import annotations

import json
from pathlib import Path

from test_chain import train

from transfersep.run.console import run_summary
from transfersep.run.plan import Plan
from transfersep.run.point import GridPoint


def test_a_baseline_records_and_prints_the_mixture_as_estimate_floor(tmp_path: Path) -> None:
    p = train(tmp_path, "pretrain=none", "downstream=dagstuhl")
    result = json.loads((tmp_path / "tiny" / "baseline" / "dagstuhl" / "result.json").read_text())
    floor = result["extra"]["mixture_as_estimate_sisdr"]
    assert isinstance(floor, float) and -60 < floor < 10
    out = p.stdout + p.stderr
    line = next(ln for ln in out.splitlines() if "floor" in ln)
    assert f"{floor:.2f} dB with the mixture itself as every source's estimate" in line
    assert f"{result['overall']['mean'] - floor:+.2f} dB over it" in line


def test_the_summary_says_no_floor_where_none_was_measured(tmp_path: Path) -> None:
    plan = Plan(GridPoint("slakh", "none", "whole", "bach10"), "whole", tmp_path, 4)
    result = {"steps": 4, "overall": {"mean": 1.0}, "per_source": {}, "extra": {"steps": 4}}
    assert "floor" not in run_summary(plan, result, 1.0)
    result["extra"]["mixture_as_estimate_sisdr"] = -2.5
    assert "  floor   -2.50 dB with the mixture itself as every source's estimate; this model +3.50 dB over it" in (
        run_summary(plan, result, 1.0)
    )
