"""Markdown table and the study-time estimate of a ``transfersep.bench`` run."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from transfersep.bench.step import CONFIGS, study_counts, study_iterations

_RANK = {
    "plain": 0,
    "naive": 0,
    "torchmetrics": 0,
    "sklearn": 0,
    "fast": 1,
    "project": 1,
    "torch": 1,
    "compiled": 2,
    "fast-bf16": 3,
}


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
        text = (_ratio(sec.get("ratios", {}).get(f"{base}/{name}")) + note(name, v)).lstrip("; ")
        rows.append([what, name, _f(w["median"]), _f(w["min"]), _f(w["max"]), "s", mem, text, cmd])
    return rows


def study_estimate(sections: dict[str, Any]) -> dict[str, Any]:
    """Hours of the study's training runs (``step.study_iterations``: every run of ``sweeps/grid.yaml``
    at the paper's budgets) at the measured paper-config step times of the fast variants, phase by
    phase (a phase not measured borrows the pretrain time), plus its evaluations and probes
    (``step.study_counts``) at the measured 1000-excerpt times where they were measured."""
    out: dict[str, Any] = {}
    iterations, runs = study_iterations()
    evaluations, probes = study_counts()
    ev = sections.get("evaluation", {})
    ev_s = ev.get("variants", {}).get("fast", {}).get("protocol_s", ev.get("protocol_s"))
    probe_s = sections.get("probe-run", {}).get("protocol_s")
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
        extra = (evaluations * ev_s if ev_s else 0.0) + (probes * probe_s if probe_s else 0.0)
        out[variant] = {
            "hours": (total + extra) / 3600,
            "training_hours": total / 3600,
            "evaluation_hours": evaluations * ev_s / 3600 if ev_s else None,
            "probe_hours": probes * probe_s / 3600 if probe_s else None,
            "step_s": times,
            "iterations": iterations,
            "runs": runs,
            "evaluations": evaluations,
            "probes": probes,
        }
    return out


def _evaluation_rows(sec: dict[str, Any], cmd: str) -> list[list[str]]:
    """One row per variant: the protocol time, its ratio, and the FLOP floor beside it."""
    scale = sec["protocol"] / sec["excerpts"]
    timed = "" if scale == 1 else f" (from {sec['excerpts']} timed, × {scale:.3g})"
    what = f"evaluation, paper model, {sec['protocol']} excerpts × {sec['seconds']:g} s{timed}"
    if "variants" not in sec:  # results written before the variants existed
        w = sec["wall_s"]
        rtf = f"{_f(sec['real_time_factor'])}× real time"
        return [[what, "", _f(w["median"] * scale), _f(w["min"] * scale), _f(w["max"] * scale), "s", "", rtf, cmd]]
    rows = []
    for name, v in sorted(sec["variants"].items(), key=lambda kv: _RANK.get(kv[0], 9)):
        w, fl = v["wall_s"], v["floor"]
        note = _ratio(sec.get("ratios", {}).get(f"plain/{name}")) if name != "plain" else ""
        note += f"; {_f(v['real_time_factor'])}× real time; {fl['gflop_per_audio_s']:.2f} GFLOP per audio-s"
        note += f" ({'+'.join(['blstm', *fl['heads']])}), {_f(v['achieved_gflops'])} GFLOP/s achieved"
        if fl.get("floor_s"):
            note += f"; floor {_f(fl['floor_s'])} s at {_f(sec['peak']['gflops'])} GFLOP/s peak"
            note += f" ({sec['peak']['how']}): {v['over_floor']:.2f}× the floor"
        if name != "plain" and sec.get("max_abs_diff_db") is not None:
            note += f"; max |SI-SDR diff| vs plain {sec['max_abs_diff_db']:.1e} dB"
        rows.append([what, name, _f(w["median"] * scale), _f(w["min"] * scale), _f(w["max"] * scale), "s"])
        rows[-1] += ["", note.lstrip("; "), cmd]
    return rows


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
            base = next(iter(sec.get("ratios", {})), "plain/").split("/")[0]  # the first variant measured
            rows += _variant_rows(what, sec, base, cmd)
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
            rows += _evaluation_rows(sec, cmd)
        elif kind == "probe":
            what = f"probe clustering, {sec['excerpts']} {sec['size']} excerpts ({sec['seconds']:g} s, D={sec['dim']})"
            rows += _variant_rows(
                what,
                sec,
                "sklearn",
                cmd,
                lambda name, v, sec=sec: (
                    f"; SI-SDR {sec['sisdr']['torch']:.2f} dB, {sec['sisdr_diff_db']:+.3f} dB vs scikit-learn"
                    + (
                        f"; k-means optimum lower on {sec['inertia']['torch_lower']}, higher on "
                        f"{sec['inertia']['torch_higher']} excerpts (> 0.1 %)"
                        if "inertia" in sec
                        else ""
                    )
                    if name == "torch"
                    else f"; SI-SDR {sec['sisdr']['sklearn']:.2f} dB"
                ),
                memory=False,
            )
        elif kind == "probe_run":
            w, scale = sec["wall_s"], sec["protocol"] / sec["excerpts"]
            timed = "" if scale == 1 else f" (from {sec['excerpts']} timed, × {scale:.3g})"
            what = f"zero-shot probe, paper model, {sec['protocol']} excerpts × {sec['seconds']:g} s{timed}"
            rows.append([what, "torch", _f(w["median"] * scale), _f(w["min"] * scale), _f(w["max"] * scale), "s"])
            rows[-1] += ["", "embeddings, k-means, masks, matching, SI-SDR", cmd]
        elif kind == "ddp":
            t = sec["step_s"]
            what = f"DDP train step, paper config, {sec['world']} process(es) × {sec['batch_per_rank']} excerpts"
            note = f"{_f(sec['samples_per_s'])} samples/s; all-reduce after the backward (upper bound)"
            rows.append([what, sec["variant"]["name"], _f(t["median"]), _f(t["min"]), _f(t["max"]), "s", "", note, cmd])
        elif kind == "loader_workers":
            what = f"loader, {sec['workers']} workers, augment={sec['setting']}"
            rows.append([what, "", _f(sec["samples_per_s"]), "", "", "samples/s", "", f"{sec['samples']} samples", cmd])
        elif kind == "loader":
            rates = [(f"augment={k}", v, "") for k, v in sec["per_worker_samples_per_s"].items()]
            rates += [
                (f"bootstrapped-DC labels, {k} excerpts", v, f"; labelling {_f(v['label_ms'])} ms/excerpt")
                for k, v in sec.get("bootstrap", {}).items()
            ]
            for what, v, more in rates:
                rows.append(
                    [
                        f"loader, one worker, {what}",
                        "",
                        _f(v["median"]),
                        _f(v["min"]),
                        _f(v["max"]),
                        "samples/s",
                        "",
                        f"CPU-time rate {_f(v.get('cpu_median'))}/s{more}",
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
                "sum of iterations × median paper-config step per phase"
                + (f" + {est['evaluations']} evaluations" if est.get("evaluation_hours") else "")
                + (f" + {est['probes']} probes" if est.get("probe_hours") else "")
                + (" (GPU-hours)" if cond.get("gpu") else ""),
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
