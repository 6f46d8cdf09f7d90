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
