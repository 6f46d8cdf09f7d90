"""Shared pieces of the package, separate and whole-band tests: a freshly trained tiny model and signals."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import numpy as np
import soundfile as sf
import torch
from torch.utils.data import DataLoader, Dataset

from transfersep.data.generated import make_sources
from transfersep.model.system import SeparationSystem

TINY = {"n_bins": 257, "hidden_size": 16, "num_layers": 2, "embedding_dim": 6, "dropout": 0.0, "log_eps": 1e-6}
NAMES = ["bass", "drums", "keys"]
GRID = {"stage": "baseline", "pretrain": "none", "augment": "none", "finetune": "whole", "downstream": "stems"}


class _Excerpts(Dataset):
    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        s = torch.from_numpy(make_sources(np.random.default_rng(i), len(NAMES), 8000))
        return {"mix": s.sum(0), "sources": s}


def train_tiny(run_dir: Path, steps: int = 3, phase: str = "whole", status: dict | None = None) -> SeparationSystem:
    """A tiny system trained ``steps`` Lightning steps; leaves ``final.ckpt`` + status.json as a run does
    (``status``: its content, default a finished baseline without a study)."""
    torch.manual_seed(0)
    system = SeparationSystem(model=TINY, phase=phase, source_names=NAMES)
    trainer = L.Trainer(
        max_steps=steps,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(system, train_dataloaders=DataLoader(_Excerpts(), batch_size=2))
    run_dir.mkdir(parents=True, exist_ok=True)
    trainer.save_checkpoint(run_dir / "final.ckpt")
    (run_dir / "status.json").write_text(json.dumps(status or {"state": "finished", "grid_point": GRID}))
    return system.eval()


def ones_mask(net: torch.nn.Module) -> None:
    """Every mask exactly 1 (sigmoid(60) == 1.0 in float32): each source must equal the mixture."""
    with torch.no_grad():
        net.mask_head.weight.zero_()
        net.mask_head.bias.fill_(60.0)


def constant_mask(net: torch.nn.Module, seed: int = 0) -> None:
    """BLSTM output 0, so each source gets a fixed per-bin mask: a model with no temporal context."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.blstm.parameters():
            p.zero_()
        net.mask_head.bias.copy_(2 * torch.randn(net.mask_head.bias.shape, generator=g))


def music(n: int, sr: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    """[n, channels] float32: tones, a gated partial and noise, different in every channel."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / sr
    cols = []
    for c in range(channels):
        f = 220.0 * (1.5**c)
        x = 0.3 * np.sin(2 * np.pi * f * t) + 0.15 * np.sin(2 * np.pi * 5 * f * t) * (np.sin(2 * np.pi * 3 * t) > 0)
        cols.append(x + 0.03 * rng.standard_normal(n))
    return np.stack(cols, axis=1).astype(np.float32)


def write_audio(path: Path, x: np.ndarray, sr: int, subtype: str | None = "FLOAT") -> Path:
    sf.write(path, x, sr, subtype=subtype if path.suffix == ".wav" else None)
    return path


def tree(path: Path) -> list[str]:
    """Every file and folder under ``path`` (relative), to assert that nothing was written."""
    return sorted(str(p.relative_to(path)) for p in path.rglob("*")) if path.exists() else []
