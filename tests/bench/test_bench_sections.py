"""The evaluation benchmark section and its table row (the other sections are exercised by
tests/model/test_fast_paths.py and tests/inference/test_separate.py through their own functions)."""

from __future__ import annotations

import pytest
import torch

from transfersep.bench.cli import plan
from transfersep.bench.report import render_table
from transfersep.bench.sections import bench_evaluation
from transfersep.evaluation import evaluate

CALLS: list[tuple] = []  # (excerpts, their mixture lengths, sources) of every evaluation the bench ran


@pytest.fixture(scope="module")
def section() -> dict:
    torch.set_num_threads(1)
    real = evaluate.score_excerpts

    def spy(separate, items, n_sources, **kw):
        CALLS.append((len(items), [tuple(it["mix"].shape) for it in items], n_sources))
        return real(separate, items, n_sources, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(evaluate, "score_excerpts", spy)
        return bench_evaluation(repeats=2, device=torch.device("cpu"), excerpts=2, protocol=1000, seconds=1.0)


def test_evaluation_times_real_excerpts_and_extrapolates(section):
    # one untimed warm-up, then two timed repeats of the plain and of the fast path, each scoring the
    # 2 excerpts of 1 s (16 000 samples)
    assert CALLS == [(2, [(16_000,), (16_000,)], 3)] * (1 + 2 * 2)
    recs = section["records"]
    assert len(recs) == 2
    med = sorted(r["wall_s"] for r in recs)
    assert section["wall_s"]["median"] == pytest.approx(sum(med) / 2)
    assert section["protocol_s"] == pytest.approx(section["wall_s"]["median"] * 500)  # 1000 / 2 excerpts
    assert section["real_time_factor"] == pytest.approx(2 * 1.0 / section["wall_s"]["median"])


def test_table_row_shows_the_protocol_time(section):
    results = {
        "conditions": {
            "cpu": "x",
            "cpu_count": 2,
            "cpu_isa": "AVX2",
            "onednn_bf16": False,
            "torch": torch.__version__,
            "torch_threads": 1,
            "loadavg": [0, 0, 0],
            "time": "t",
        },
        "section_order": ["evaluation"],
        "sections": {"evaluation": {**section, "command": "cmd", "spec": {"kind": "evaluation"}}},
    }
    rows = [line for line in render_table(results).splitlines() if line.startswith("| evaluation")]
    assert [r.split(" | ")[1] for r in rows] == ["plain", "fast"]  # today's path first, then the tool's
    row = rows[1]
    assert "1000 excerpts × 1 s (from 2 timed, × 500)" in row
    t = section["wall_s"]["median"] * 500  # shown with 3 significant digits, or as 1,234 from 1000 up
    assert (f"{t:,.0f}" if t >= 1000 else f"{t:.3g}") in row


def test_the_evaluation_states_its_flop_floor(section):
    fast, plain = section["variants"]["fast"], section["variants"]["plain"]
    # the paper model a second of audio: 125 frames x (42.056 BLSTM + 1.542 mask head) MFLOP, plus
    # 10.28 for the embedding head that only the plain path computes (2 x 1000 x 257 x 20 a frame)
    assert fast["floor"]["gflop_per_audio_s"] == pytest.approx(125 * 43.598 / 1e3)
    assert plain["floor"]["gflop_per_audio_s"] == pytest.approx(125 * 53.878 / 1e3)
    assert fast["floor"]["gflop"] == pytest.approx(125 * 43.598 * 1000 / 1e3)  # 1000 one-second excerpts
    peak = section["peak"]
    if peak["gflops"]:
        assert fast["floor"]["floor_s"] == pytest.approx(fast["floor"]["gflop"] / peak["gflops"])
        assert fast["over_floor"] == pytest.approx(fast["protocol_s"] / fast["floor"]["floor_s"])
    assert section["max_abs_diff_db"] < 0.01  # the two paths score alike


def test_plan_has_the_protocol_section_on_every_device():
    for device, quick, n in (("cpu", False, 48), ("cpu", True, 8), ("cuda", False, 1000)):
        ev = [s for s in plan(quick, device, 2) if s["id"] == "evaluation"]
        assert len(ev) == 1 and ev[0]["excerpts"] == n
