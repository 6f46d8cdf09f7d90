"""Timing and memory primitives of ``transfersep.bench``, and the conditions of a run.

Time: wall clock (``time.perf_counter``) of each repeat, with ``torch.cuda.synchronize`` around it
on GPU; the process CPU time (all threads) is recorded beside it, since on a shared machine the
wall clock also measures other people's jobs.

Peak memory: tracemalloc does not see torch's allocations, so on CPU the kernel's resident-set
high-water mark is used: before each repeat glibc's freed heap is returned to the kernel
(``malloc_trim``, else a reused free block would not show) and the mark is reset to the current
RSS by writing "5" to /proc/self/clear_refs (Linux >= 4.0); after it ``VmHWM - RSS before``
is the repeat's peak *extra* memory: activations, temporaries and gradients, everything the
repeat allocates on top of what was already live. Where the reset is not allowed, the fallback
is ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` of the worker process (whole-process peak,
flagged ``"method": "ru_maxrss"``). On GPU: ``torch.cuda.max_memory_allocated`` after
``reset_peak_memory_stats``, minus ``memory_allocated`` before.
"""

from __future__ import annotations

import ctypes
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import torch

MiB = 1 << 20


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _trim_heap() -> None:
    """Give freed heap memory back to the kernel (glibc ``malloc_trim``), so that an allocation served
    from it faults pages in again and shows in the resident set instead of hiding in reused pages."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class PeakMemory:
    """``with PeakMemory(device) as m: ...`` then ``m.extra_mib`` (peak above the start) and ``m.method``."""

    def __init__(self, device: torch.device):
        self.device = device
        self.extra_mib: float | None = None
        self.method = ""

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._start = torch.cuda.memory_allocated(self.device)
            self.method = "cuda.max_memory_allocated"
            return self
        _trim_heap()
        if _reset_hwm() and _status_kib("VmRSS") is not None:
            self._start = _status_kib("VmRSS") * 1024
            self.method = "VmHWM-after-clear_refs"
        else:
            self._start = 0
            self.method = "ru_maxrss"
        return self

    def __exit__(self, *exc) -> None:
        if self.method.startswith("cuda"):
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device)
        elif self.method.startswith("VmHWM"):
            peak = _status_kib("VmHWM") * 1024
        else:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        self.extra_mib = (peak - self._start) / MiB


def timed(fn: Callable[[], Any], device: torch.device) -> dict[str, float]:
    """One repeat of ``fn``: {"wall_s", "cpu_s", "extra_mib"} (see the module docstring)."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda *a: None)
    with PeakMemory(device) as mem:
        sync()
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        sync()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"wall_s": wall, "cpu_s": cpu, "extra_mib": mem.extra_mib, "mem_method": mem.method}


def interleaved(
    variants: dict[str, Callable[[], Any]], repeats: int, device: torch.device, warmup: int = 1
) -> dict[str, list[dict[str, float]]]:
    """Repeats of each variant in the order A B A B ... (after ``warmup`` untimed rounds), so a
    change of machine load hits every variant alike; returns the per-repeat records."""
    for _ in range(warmup):
        for fn in variants.values():
            fn()
    out: dict[str, list[dict[str, float]]] = {k: [] for k in variants}
    for r in range(repeats):
        order = list(variants) if r % 2 == 0 else list(reversed(variants))  # neither always goes first
        for k in order:
            out[k].append(timed(variants[k], device))
            rec = out[k][-1]
            print(
                f"  [{r + 1}/{repeats}] {k}: {rec['wall_s']:.3f} s wall, {rec['cpu_s']:.3f} s CPU, "
                f"{rec['extra_mib']:.0f} MiB extra",
                file=sys.stderr,
                flush=True,
            )
    return out


def summary(records: list[dict[str, float]], key: str = "wall_s") -> dict[str, float]:
    vals = [r[key] for r in records if r.get(key) is not None]
    if not vals:
        return {}
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


def ratio(slow: list[dict[str, float]], fast: list[dict[str, float]], key: str = "wall_s") -> dict[str, float]:
    """median(slow) / median(fast), and the min/max of the per-round ratios (paired repeats)."""
    pairs = [a[key] / b[key] for a, b in zip(slow, fast) if a.get(key) and b.get(key)]
    return (
        {
            "median_ratio": statistics.median(r[key] for r in slow) / statistics.median(r[key] for r in fast),
            "pair_min": min(pairs),
            "pair_max": max(pairs),
        }
        if pairs
        else {}
    )


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def conditions(device: torch.device) -> dict[str, Any]:
    """What a figure depends on besides the code: machine, threads, load, versions."""
    info: dict[str, Any] = {
        "device": str(device),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu_isa": torch.backends.cpu.get_cpu_capability(),
        "onednn_bf16": bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()),
        "loadavg": [round(v, 2) for v in os.getloadavg()],
        "torch": torch.__version__,
        "python": platform.python_version(),
        "time": time.strftime("%Y-%m-%d %H:%M:%S %z"),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=os.path.dirname(os.path.abspath(__file__)),
        )
        info["git"] = rev.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        info["git"] = None
    info["argv"] = " ".join(sys.argv)
    return info
