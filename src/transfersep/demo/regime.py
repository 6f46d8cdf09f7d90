"""The regime of a study: the ratios that decide whether pretraining can help, beside the paper's.

    python -m transfersep.demo.regime [--data demo_data] [--downstream bach10,dagstuhl] [overrides ...]

Composes ``train.py``'s config (``experiment=demo`` unless an override names another experiment),
reads the training splits through the real loaders and prints a Markdown table:

* parameters per downstream training time-frequency bin (can the model memorise the set?);
* passes of the from-scratch baseline over the downstream training audio (does it have the time to?);
* pretraining passes over the pretraining corpus, and pretraining audio : downstream audio;
* optimiser steps of pretraining and of the baseline.

The paper's column uses the paper's model (``conf/model/chimera.yaml``), its budgets and batch
(``experiment=paper``) and the training durations of its Table 1 (minutes: Slakh 7830, MUSDB 600,
Bach10 5, Dagstuhl ChoirSet 70, Remixpacks 192).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

PAPER_TRAIN_MINUTES = {
    "slakh": 7830.0,
    "musdb": 600.0,
    "both": 8430.0,
    "bach10": 5.0,
    "dagstuhl": 70.0,
    "remixpacks": 192.0,
}


def _compose(overrides: Sequence[str]):
    from transfersep.run.config import compose

    return compose(overrides)


def _params(model_cfg, n_sources: int) -> int:
    from omegaconf import OmegaConf

    from transfersep.model import ChimeraConfig, ChimeraNet

    cfg = ChimeraConfig(**{**OmegaConf.to_container(model_cfg, resolve=True), "n_sources": n_sources})
    return sum(p.numel() for p in ChimeraNet(cfg).parameters())


def _train_seconds(ds_cfg) -> float:
    from transfersep.data.registry import index_from_cfg

    return sum(t.seconds for t in index_from_cfg(ds_cfg).tracks if t.split == "train")


def ratios(cfg, params: int, pretrain_s: float, down_s: float) -> dict[str, float]:
    """The regime of one (pretraining corpus, downstream set) pair under config ``cfg``."""
    from transfersep.audio import STFTConfig

    stft = STFTConfig()
    bins_per_s = stft.sample_rate / stft.hop_length * stft.n_bins
    per_step = int(cfg.data.batch_size) * float(cfg.data.excerpt_seconds)
    return {
        "params": params,
        "params_per_bin": params / (down_s * bins_per_s),
        "baseline_passes": int(cfg.budget.baseline) * per_step / down_s,
        "pretrain_passes": int(cfg.budget.pretrain) * per_step / pretrain_s,
        "audio_ratio": pretrain_s / down_s,
        "pretrain_steps": int(cfg.budget.pretrain),
        "baseline_steps": int(cfg.budget.baseline),
        "pretrain_s": pretrain_s,
        "down_s": down_s,
    }


def table(downstreams: Sequence[str], overrides: Sequence[str], pretrain: str = "slakh") -> str:
    """The Markdown table: one (paper, study) column pair per downstream set."""
    ours_ov = (
        list(overrides) if any(o.startswith("experiment=") for o in overrides) else ["experiment=demo", *overrides]
    )
    cols = []
    for d in downstreams:
        ours = _compose([*ours_ov, f"pretrain={pretrain}", f"downstream={d}"])
        paper = _compose(["experiment=paper", f"pretrain={pretrain}", f"downstream={d}"])
        n_src = len(ours.downstream.dataset.sources)
        # a corpus the paper did not pretrain on (speech) has no paper figures for its rows
        pre_s = PAPER_TRAIN_MINUTES.get(pretrain, float("nan")) * 60
        cols.append((d, "paper", ratios(paper, _params(paper.model, n_src), pre_s, PAPER_TRAIN_MINUTES[d] * 60)))
        cols.append(
            (
                d,
                str(ours.study),
                ratios(
                    ours,
                    _params(ours.model, n_src),
                    _train_seconds(ours.pretrain.dataset),
                    _train_seconds(ours.downstream.dataset),
                ),
            )
        )
    rows = [
        ("model parameters", lambda r: f"{r['params'] / 1e6:.2f} M"),
        (
            "downstream training audio",
            lambda r: f"{r['down_s'] / 60:.1f} min" if r["down_s"] >= 120 else f"{r['down_s']:.0f} s",
        ),
        ("parameters per downstream training TF bin", lambda r: f"{r['params_per_bin']:.2f}"),
        ("baseline passes over the downstream training audio", lambda r: f"{r['baseline_passes']:,.0f}"),
        (f"pretraining audio ({pretrain}) : downstream audio", lambda r: _or_dash(r["audio_ratio"], "{:,.0f} : 1")),
        ("pretraining passes over the pretraining corpus", lambda r: _or_dash(r["pretrain_passes"], "{:.1f}")),
        ("optimiser steps: pretraining / baseline", lambda r: f"{r['pretrain_steps']:,} / {r['baseline_steps']:,}"),
    ]
    head = "| ratio | " + " | ".join(f"{d}: {who}" for d, who, _ in cols) + " |"
    lines = [head, "|---" * (len(cols) + 1) + "|"]
    lines += ["| " + name + " | " + " | ".join(fmt(r) for _, _, r in cols) + " |" for name, fmt in rows]
    return "\n".join(lines)


def _or_dash(x: float, fmt: str) -> str:
    return "—" if x != x else fmt.format(x)  # NaN: the paper has no such corpus


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m transfersep.demo.regime", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="demo_data", help="the demo corpus (paths.data_dir)")
    ap.add_argument("--downstream", default="bach10,dagstuhl")
    ap.add_argument("--pretrain", default="slakh")
    ap.add_argument("overrides", nargs="*", help="Hydra overrides (e.g. experiment=demo budget.pretrain=900)")
    a = ap.parse_args(argv)
    ov = [f"paths.data_dir={Path(a.data).resolve()}", *a.overrides]
    print(table(a.downstream.split(","), ov, a.pretrain))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
