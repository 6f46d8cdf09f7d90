"""The loader benchmark runs end to end and reports every augment setting (no timing asserted)."""

from transfersep.bench.data import bench_loader
from transfersep.study.grid import load_grid


def test_bench_loader_reports_each_setting(tmp_path):
    res = bench_loader(
        samples=2, repeats=2, seconds=1.0, batch_size=2, n_tracks=2, track_seconds=3.0, cache_dir=tmp_path / "cache"
    )
    assert list(res) == list(load_grid().axes["augment"])
    for r in res.values():
        assert r["repeats"] == 2 and 0 < r["min"] <= r["median"] <= r["max"] and r["cpu_median"] > 0


def test_bench_bootstrap_reports_each_length_and_its_row(tmp_path):
    from transfersep.bench.data import bench_bootstrap
    from transfersep.bench.report import render_table

    res = bench_bootstrap(samples=2, repeats=1, lengths=(1.0,), batch_size=2, n_tracks=2, track_seconds=3.0)
    assert list(res) == ["1s"]
    r = res["1s"]
    assert r["repeats"] == 1 and 0 < r["min"] <= r["median"] <= r["max"] and r["label_ms"] > 0
    cond = {"cpu": "x", "cpu_count": 2, "cpu_isa": "AVX2", "onednn_bf16": False, "torch": "t"}
    cond |= {"torch_threads": 1, "loadavg": [0, 0, 0], "time": "t"}
    sec = {"spec": {"kind": "loader"}, "per_worker_samples_per_s": {}, "bootstrap": {"10s": {**r, "median": 25.0}}}
    table = render_table({"conditions": cond, "sections": {"loader": sec}})
    assert "loader, one worker, bootstrapped-DC labels, 10s excerpts |  | 25 |" in table
