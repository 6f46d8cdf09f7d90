"""The probe's benchmark: both clustering paths on the same embeddings, and the FLOP arithmetic."""

from __future__ import annotations

import pytest
import torch

from project import grid_counts
from transfersep.bench import flops
from transfersep.bench.probe import bench_probe

pytest.importorskip("sklearn.cluster", reason="scikit-learn is the probe benchmark's reference (dev extra)")


def test_probe_section_times_both_paths_and_compares_their_separations():
    torch.set_num_threads(1)
    sec = bench_probe("demo", excerpts=3, repeats=1, device=torch.device("cpu"))
    assert set(sec["variants"]) == {"sklearn", "torch"}
    assert all(v["wall_s"]["median"] > 0 for v in sec["variants"].values())
    assert sec["sisdr_diff_db"] == pytest.approx(sec["sisdr"]["torch"] - sec["sisdr"]["sklearn"])
    # the synthetic embeddings carry the sources: the clusters separate them (the mixture is ~-3 dB)
    assert min(sec["sisdr"].values()) > 3.0
    # both paths draw the same subset and k-means++ uniforms: they end in the same optimum, so they
    # separate alike (with draws of their own they differ by which optimum each seed found)
    counts = sec["inertia"]
    assert counts["torch_lower"] == counts["torch_higher"] == 0
    assert abs(sec["sisdr_diff_db"]) < 0.01


def test_flops_from_the_model_sizes():
    f = flops.forward_mflop_per_frame()
    # 2 FLOP a multiply-add: layer 1 2 dirs x 4 gates x 500 x (257 + 500), layers 2-4 with 1000 inputs
    assert f["blstm"] == pytest.approx((2 * 2 * 2000 * 757 + 3 * 2 * 2 * 2000 * 1500) / 1e6)
    assert f["embedding"] == pytest.approx(2 * 1000 * 257 * 20 / 1e6)
    assert f["mask"] == pytest.approx(2 * 1000 * 257 * 3 / 1e6)
    fl = flops.floor(10.0, ("mask",), 100.0)
    assert fl["floor_s"] == pytest.approx(fl["gflop"] / 100.0)
    assert flops.floor(1.0, (), None)["floor_s"] is None


def test_cpu_peak_from_the_instruction_set_and_clock(monkeypatch):
    monkeypatch.setattr(flops, "_cpuinfo", lambda: ({"avx2", "fma"}, 3000.0))
    assert flops.cpu_fp32_peak(2)["gflops"] == pytest.approx(2 * 3.0 * 32)  # 2 x 8-wide FMA x 2 FLOP
    monkeypatch.setattr(flops, "_cpuinfo", lambda: ({"avx2", "fma", "avx512f"}, 2000.0))
    assert flops.cpu_fp32_peak(4)["gflops"] == pytest.approx(4 * 2.0 * 64)
    monkeypatch.setattr(flops, "_cpuinfo", lambda: (set(), None))
    assert flops.cpu_fp32_peak(2)["gflops"] is None


def test_gpu_check_rows_and_the_study_estimate_with_evaluations_and_probes():
    from transfersep.bench.report import render_table, study_estimate
    from transfersep.bench.step import study_counts, study_iterations

    iterations, _ = study_iterations()
    evaluations, probes = study_counts()
    n = grid_counts()  # every pretraining of the grid, fine-tunes and probes at every length, baselines
    assert (evaluations, probes) == (n["finetunes"] + n["baselines"], n["probes"])

    step = {"variants": {"fast-bf16": {"wall_s": {"median": 0.1, "min": 0.1, "max": 0.1}, "extra_mib": {}}}}
    sections = {
        "step-paper-pretrain": {**step, "config": "paper", "phase": "pretrain", "spec": {"kind": "step", "threads": 1}},
        "ddp": {
            "spec": {"kind": "ddp"},
            "world": 2,
            "batch_per_rank": 24,
            "variant": {"name": "fast-bf16"},
            "step_s": {"median": 0.12, "min": 0.11, "max": 0.13},
            "samples_per_s": 400.0,
        },
        "loader-workers": {"spec": {"kind": "loader_workers"}, "workers": 4, "setting": "pitch"}
        | {"samples": 192, "samples_per_s": 96.0},
        "probe-run": {"spec": {"kind": "probe_run"}, "excerpts": 1000, "protocol": 1000, "seconds": 10.0}
        | {"wall_s": {"median": 20.0, "min": 20.0, "max": 20.0}, "protocol_s": 20.0},
        "evaluation": {"protocol_s": 30.0},
    }
    est = study_estimate(sections)["fast-bf16"]
    train_s = 0.1 * sum(iterations.values())  # every phase borrows the pretrain step
    assert est["hours"] == pytest.approx((train_s + evaluations * 30.0 + probes * 20.0) / 3600)
    cond = {"cpu": "x", "cpu_count": 16, "cpu_isa": "AVX512", "onednn_bf16": True, "torch": "t"}
    cond |= {"torch_threads": 16, "loadavg": [0, 0, 0], "time": "t", "gpu": "H200"}
    sections.pop("evaluation")
    table = render_table({"conditions": cond, "sections": sections, "study_estimate": {"fast-bf16": est}})
    assert "DDP train step, paper config, 2 process(es) × 24 excerpts | fast-bf16 | 0.12" in table
    assert "loader, 4 workers, augment=pitch |  | 96 |" in table
    assert "zero-shot probe, paper model, 1000 excerpts × 10 s | torch | 20 |" in table
    assert "(GPU-hours)" in table
