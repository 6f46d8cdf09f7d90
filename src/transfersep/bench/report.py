"""Markdown table and the study-time estimate of a ``transfersep.bench`` run."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from transfersep.bench.step import CONFIGS, study_iterations

_RANK = {"plain": 0, "naive": 0, "torchmetrics": 0, "fast": 1, "project": 1, "compiled": 2, "fast-bf16": 3}


def _f(x: float | None, nd: int = 3) -> str:
    if x is None:
        return "—"
    return f"{x:.{nd}g}" if abs(x) < 1000 else f"{x:,.0f}"


def _ratio(r: dict[str, float] | None) -> str:
    if not r:
        return ""
    return f"{r['median_ratio']:.2f}× (pairs {r['pair_min']:.2f}–{r['pair_max']:.2f})"


def _variant_rows(
    what: str,
    sec: dict[str, Any],
    base: str,
    cmd: str,
    note: Callable[[str, dict], str] = lambda name, v: "",
    memory: bool = True,
) -> list[list[str]]:
    """One row per timed variant of a section: times, extra memory, the ratio base/variant and a note."""
    rows = []
    for name, v in sec["variants"].items():
        w = v["wall_s"]
        mem = _f(v["extra_mib"].get("median"), 4) if memory else ""
        text = _ratio(sec.get("ratios", {}).get(f"{base}/{name}")) + note(name, v)
        rows.append([what, name, _f(w["median"]), _f(w["min"]), _f(w["max"]), "s", mem, text, cmd])
    return rows


def study_estimate(sections: dict[str, Any]) -> dict[str, Any]:
    """Hours of the study's training runs (``step.study_iterations``; the paper's 87 runs, 300 000
    iterations) at the measured paper-config step times of the fast variants, phase by phase (a
    phase not measured borrows the pretrain time)."""
    out: dict[str, Any] = {}
    iterations, runs = study_iterations()
    for variant in ("fast", "fast-bf16"):
        times = {}
        for phase in iterations:
            sec = sections.get(f"step-paper-{phase}", {})
            med = sec.get("variants", {}).get(variant, {}).get("wall_s", {}).get("median")
            if med is not None:
                times[phase] = med
        if "pretrain" not in times:
            continue
        total = sum(n * times.get(p, times["pretrain"]) for p, n in iterations.items())
        out[variant] = {"hours": total / 3600, "step_s": times, "iterations": iterations, "runs": runs}
    return out


def render_table(results: dict[str, Any]) -> str:
    cond = results["conditions"]
    rows: list[list[str]] = []
    cmds: list[str] = []

    def ref(cmd: str) -> str:
        if cmd not in cmds:
            cmds.append(cmd)
        return f"[{cmds.index(cmd) + 1}]"

    order = results.get("section_order", [])
    ids = [i for i in order if i in results["sections"]] + [i for i in results["sections"] if i not in order]
    for sid in ids:
        sec = results["sections"][sid]
        if "variants" in sec:  # the baseline first (JSON files come back with sorted keys)
            sec = {**sec, "variants": dict(sorted(sec["variants"].items(), key=lambda kv: _RANK.get(kv[0], 9)))}
        cmd = ref(sec.get("command", ""))
        load = sec.get("conditions_after", {}).get("loadavg")
        if load:  # the 1-minute load average when the section ended: how shared the machine was
            cmd += f" (load {load[0]:.1f})"
        if "error" in sec:
            rows.append([sid, "—", "failed", "", "", "", "", sec["error"], cmd])
            continue
        kind = sec.get("spec", {}).get("kind")
        if kind == "step":
            c = CONFIGS[sec["config"]]
            what = f"train step, {sec['config']} ({c['batch']}×{c['seconds']:g} s, {c['sources']} src), {sec['phase']}"
            if sec["spec"]["threads"] != results["conditions"]["torch_threads"]:
                what += f", {sec['spec']['threads']} thread(s)"
            rows += _variant_rows(what, sec, "plain", cmd)
        elif kind == "dc":
            s = sec["size"]
            what = f"DC loss fwd+bwd ({s['batch']}×{s['frames']}×{s['bins']}, D={s['dim']}, C={s['sources']})"
            rows += _variant_rows(
                what,
                sec,
                "naive",
                cmd,
                lambda name, v, sec=sec: (
                    (f"; rel. loss diff {v['rel_diff_vs_naive']:.1e}" if name != "naive" else "")
                    + (f"; memory {sec['memory_ratio_fast/naive']:.2f}× naive's" if name == "fast" else "")
                ),
            )
        elif kind == "compile":
            z = sec["size"]
            what = f"heads + DC fwd+bwd ({z['batch']}×{z['frames']} frames), torch.compile"
            rows += _variant_rows(
                what,
                sec,
                "plain",
                cmd,
                lambda name, v, sec=sec: f"; compiling took {sec['compile_s']:.0f} s" if name == "compiled" else "",
            )
        elif kind == "sisdr":
            what = f"SI-SDR, {sec['pairs']} pairs × {sec['seconds']:g} s"
            rows += _variant_rows(
                what,
                sec,
                "torchmetrics",
                cmd,
                lambda name, v, sec=sec: (
                    f"; max |diff| {sec['max_abs_diff_db']:.1e} dB"
                    if name == "project" and "max_abs_diff_db" in sec
                    else ""
                ),
                memory=False,
            )
        elif kind == "evaluation":
            w = sec["wall_s"]
            scale = sec["protocol"] / sec["excerpts"]
            timed = "" if scale == 1 else f" (from {sec['excerpts']} timed, × {scale:.3g})"
            rows.append(
                [
                    f"evaluation, paper model fp32, {sec['protocol']} excerpts × {sec['seconds']:g} s{timed}",
                    "",
                    _f(w["median"] * scale),
                    _f(w["min"] * scale),
                    _f(w["max"] * scale),
                    "s",
                    "",
                    f"{_f(sec['real_time_factor'])}× real time",
                    cmd,
                ]
            )
        elif kind == "loader":
            for setting, v in sec["per_worker_samples_per_s"].items():
                rows.append(
                    [
                        f"loader, one worker, augment={setting}",
                        "",
                        _f(v["median"]),
                        _f(v["min"]),
                        _f(v["max"]),
                        "samples/s",
                        "",
                        f"CPU-time rate {_f(v.get('cpu_median'))}/s",
                        cmd,
                    ]
                )
        elif kind == "separation":
            r = sec["result"]
            rows.append(
                [
                    f"separation, {r['model']} model, {r['audio_seconds']:g} s file",
                    r.get("precision", ""),
                    _f(r["rtf_median"]),
                    _f(r["rtf_min"]),
                    _f(r["rtf_max"]),
                    "× real time",
                    "",
                    f"CPU-time RTF {_f(r.get('cpu_rtf_median'))}",
                    cmd,
                ]
            )
    for variant, est in results.get("study_estimate", {}).items():
        steps = sum(est.get("iterations", {}).values())
        rows.append(
            [
                f"study estimate ({est.get('runs', '?')} runs, {steps / 1000:g}k iterations)",
                variant,
                _f(est["hours"]),
                "",
                "",
                "hours",
                "",
                "sum of iterations × median paper-config step per phase",
                "",
            ]
        )
    head = ["figure", "variant", "median", "min", "max", "unit", "extra mem. (MiB)", "ratio / note", "cmd (load)"]
    lines = [
        f"Machine: {cond['cpu']} ({cond['cpu_count']} cores, ISA {cond['cpu_isa']}, oneDNN bf16 "
        f"{'yes' if cond['onednn_bf16'] else 'no'}){', GPU ' + cond['gpu'] if cond.get('gpu') else ''}; "
        f"torch {cond['torch']}, {cond['torch_threads']} threads; load average at start "
        f"{cond['loadavg']}, at end {cond.get('loadavg_end')}; {cond['time']}.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    lines += [""] + [f"[{i + 1}] `{c}`" for i, c in enumerate(cmds)]
    lines += [
        "",
        "Times are medians of interleaved repeats (wall clock); ratios are plain/naive over the "
        "faster variant, median of medians and the range of per-round ratios; extra memory is the "
        "peak above what was live before the call (transfersep.bench.measure).",
    ]
    return "\n".join(lines)
