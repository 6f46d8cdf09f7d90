"""The FLOP floor of a forward pass: the work ChimeraNet's sizes imply, over the cores' fp32 peak.

Work (multiply-adds count 2 FLOP; biases, activations, the STFT and SI-SDR are left out — a few
per cent): a BLSTM layer of H units per direction on I inputs costs ``2 x 4H x (I + H)`` FLOP a
frame and direction; the embedding head ``2 x 2H x F x D``, the mask head ``2 x 2H x F x C``. The
paper's model (4 x 500, F = 257, D = 20, C = 3) is 42.1 + 10.3 + 1.5 MFLOP a frame, at 125
frames a second of 16-kHz audio (hop 128).

Peak: cores x clock x fp32 FLOP a cycle and core, the last from the instruction set the CPU flags
announce, assuming two FMA units (as the server cores of the AVX2/AVX-512 generations have):
AVX-512F 2 x 16 x 2 = 64, AVX2 + FMA 2 x 8 x 2 = 32, else SSE 2 x 4 = 8 (no FMA). The clock is the
highest of /proc/cpuinfo's current ``cpu MHz`` and sysfs's ``cpuinfo_max_freq``; the assumption
is printed with every floor so it can be checked.
"""

from __future__ import annotations

from typing import Any

FRAMES_PER_S = 16_000 / 128


def forward_mflop_per_frame(
    hidden: int = 500, layers: int = 4, n_bins: int = 257, dim: int = 20, sources: int = 3
) -> dict[str, float]:
    """MFLOP a frame of each part of ChimeraNet's forward pass: {"blstm", "embedding", "mask"}."""
    blstm = sum(2 * 2 * 4 * hidden * ((n_bins if i == 0 else 2 * hidden) + hidden) for i in range(layers))
    return {
        "blstm": blstm / 1e6,
        "embedding": 2 * 2 * hidden * n_bins * dim / 1e6,
        "mask": 2 * 2 * hidden * n_bins * sources / 1e6,
    }


def _cpuinfo() -> tuple[set[str], float | None]:
    flags: set[str] = set()
    mhz: float | None = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, val = line.partition(":")
                if key.strip() == "flags" and not flags:
                    flags = set(val.split())
                elif key.strip() == "cpu MHz":
                    mhz = max(mhz or 0.0, float(val))
    except (OSError, ValueError):
        pass
    try:
        with open("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq") as f:
            mhz = max(mhz or 0.0, int(f.read()) / 1000)
    except (OSError, ValueError):
        pass
    return flags, mhz


def cpu_fp32_peak(cores: int) -> dict[str, Any]:
    """{"gflops", "cores", "ghz", "flop_per_cycle", "isa", "how"} of ``cores`` cores; gflops None when
    the clock cannot be read."""
    flags, mhz = _cpuinfo()
    if "avx512f" in flags:
        isa, per_cycle = "AVX-512F", 64
    elif "avx2" in flags and "fma" in flags:
        isa, per_cycle = "AVX2+FMA", 32
    else:
        isa, per_cycle = "SSE", 8
    ghz = mhz / 1000 if mhz else None
    gflops = cores * ghz * per_cycle if ghz else None
    how = (
        f"{cores} cores x {ghz:.2f} GHz x {per_cycle} fp32 FLOP/cycle ({isa}, two FMA units assumed)"
        if ghz
        else f"clock unknown ({isa}: {per_cycle} fp32 FLOP/cycle/core)"
    )
    return {"gflops": gflops, "cores": cores, "ghz": ghz, "flop_per_cycle": per_cycle, "isa": isa, "how": how}


def floor(
    audio_seconds: float, heads: tuple[str, ...], peak_gflops: float | None, sizes: dict | None = None
) -> dict[str, Any]:
    """The forward work of ``audio_seconds`` of audio with ``heads`` ("embedding", "mask") and the time
    it takes at ``peak_gflops``: {"gflop", "gflop_per_audio_s", "floor_s"}."""
    per_frame = forward_mflop_per_frame(**(sizes or {}))
    mflop = per_frame["blstm"] + sum(per_frame[h] for h in heads)
    gflop = mflop * FRAMES_PER_S * audio_seconds / 1e3
    return {
        "gflop": gflop,
        "gflop_per_audio_s": mflop * FRAMES_PER_S / 1e3,
        "heads": list(heads),
        "floor_s": gflop / peak_gflops if peak_gflops else None,
    }
