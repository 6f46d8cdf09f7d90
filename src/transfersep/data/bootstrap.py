"""Deep-clustering labels without stems: primitive grouping cues vote on every time-frequency bin.

Bootstrapped deep clustering (Seetharaman, Wichern, Le Roux & Pardo, 2020) trains the DC loss on
labels made by primitive separators from the mixture alone, weighting each bin by how much the
primitives agree. Two groups (G = 2), the same side for every primitive:

  group 0  the sustained bed: held notes, chords, bass, pads (harmonic, recurring in most frames)
  group 1  the transient events: onsets, drum hits, clicks (percussive, sparse in time)

Primitives, each a binary decision per bin on the mixture magnitude |X| ([F, T], the tool's STFT:
sqrt-Hann, 512 points, hop 128, centred; computed in numpy so it runs inside loader workers):

- ``hpss`` (Fitzgerald 2010, as ``librosa.decompose.hpss``): H = |X| median-filtered along time
  (``hpss_kernel[0]`` frames), P = along frequency (``hpss_kernel[1]`` bins); group 0 where
  H > hpss_margin * P (librosa's hard harmonic mask), else group 1.
- ``repet`` (REPET-SIM, Rafii & Pardo 2012, as ``librosa.decompose.nn_filter`` with a median over
  ``librosa.segment.recurrence_matrix`` neighbours): frames are averaged in blocks of
  ``repet_pool`` (the recurrence is computed on these coarser frames, 16x cheaper at 4); each
  block's similar blocks are its K = ``repet_depth`` x (blocks) most cosine-similar ones (none
  closer than ``repet_width`` blocks), and the repeating estimate R is the median of
  ``repet_neighbours`` of them evenly spaced in similarity rank (a sample of the K: the median of
  all K costs K/15 times more for nearly the same value). With B = min(|X|, R) a bin is group 0
  where B > repet_margin * (|X| - B) (librosa's hard background mask), else group 1.
  K is a fraction of the excerpt (half by default), so "repeating" means present in most of the
  similar frames: a sustained tone is, a click or drum hit recurring a few times a second (in
  under a quarter of the frames) is not, which puts both cues on the same side for the bed and
  for the events. (Classic REPET-SIM takes a few nearest neighbours and calls a drum loop
  background; a small ``repet_depth`` does that, and the two cues then disagree on drums, which
  the weights show as low confidence.)

label = majority vote (ties go to group 0); weight = agreement, 2 * (fraction of votes with the
majority) - 1: 1 when all agree, 0 on a tie. The median filters run as a compiled running median
(numba, a librosa dependency): equal to scipy.ndimage.median_filter, ~20x faster here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from transfersep.audio import STFTConfig
from transfersep.data.index import DatasetError

PRIMITIVES = ("hpss", "repet")


@dataclass(frozen=True)
class BootstrapSpec:
    """The primitives' settings, ``pretrain.bootstrap`` (defaults in conf/objective/bootstrap.yaml)."""

    primitives: tuple[str, ...] = PRIMITIVES
    hpss_kernel: tuple[int, int] = (17, 17)  # (frames along time, bins along frequency), odd
    hpss_margin: float = 1.0
    repet_pool: int = 4  # STFT frames per recurrence frame
    repet_depth: float = 0.5  # fraction of the recurrence frames that count as a block's similar ones
    repet_neighbours: int = 15  # of those, how many (evenly spaced in similarity rank) the median takes
    repet_width: int = 1  # neighbours at least this many recurrence frames away (1: all but itself)
    repet_margin: float = 1.0

    @classmethod
    def from_cfg(cls, cfg: Mapping[str, Any] | None, key: str = "pretrain.bootstrap") -> BootstrapSpec:
        """Read and check a config node; a bad key or value raises one line naming it."""
        raw = dict(cfg or {})
        known = {f.name for f in fields(cls)}
        for k in raw:
            if k not in known:
                raise DatasetError(f"{key}.{k}: unknown key; the keys are {', '.join(sorted(known))}")
        prim = tuple(str(p) for p in raw.get("primitives", PRIMITIVES))
        bad = [p for p in prim if p not in PRIMITIVES]
        if bad or not prim or len(set(prim)) != len(prim):
            raise DatasetError(f"{key}.primitives={list(prim)}: give one or more of {', '.join(PRIMITIVES)}, each once")
        kern = tuple(int(k) for k in raw.get("hpss_kernel", cls.hpss_kernel))
        if len(kern) != 2 or any(k < 1 or k % 2 == 0 for k in kern):
            raise DatasetError(f"{key}.hpss_kernel={list(kern)}: give two odd sizes, [frames, bins], e.g. [17, 17]")
        spec = cls(
            primitives=prim,
            hpss_kernel=kern,  # type: ignore[arg-type]
            hpss_margin=float(raw.get("hpss_margin", cls.hpss_margin)),
            repet_pool=int(raw.get("repet_pool", cls.repet_pool)),
            repet_depth=float(raw.get("repet_depth", cls.repet_depth)),
            repet_neighbours=int(raw.get("repet_neighbours", cls.repet_neighbours)),
            repet_width=int(raw.get("repet_width", cls.repet_width)),
            repet_margin=float(raw.get("repet_margin", cls.repet_margin)),
        )
        for name, ok, want in (
            ("hpss_margin", spec.hpss_margin >= 1, ">= 1 (librosa's margins)"),
            ("repet_margin", spec.repet_margin >= 1, ">= 1 (librosa's margins)"),
            ("repet_pool", spec.repet_pool >= 1, "a whole number of frames >= 1"),
            ("repet_depth", 0 < spec.repet_depth <= 1, "a fraction in (0, 1]"),
            ("repet_neighbours", spec.repet_neighbours >= 1, "a whole number >= 1 (odd: one selection)"),
            ("repet_width", spec.repet_width >= 1, "a whole number of frames >= 1"),
        ):
            if not ok:
                raise DatasetError(f"{key}.{name}={getattr(spec, name)}: must be {want}")
        return spec


# -- the mixture's magnitude --------------------------------------------------------------------
def magnitude(mix: np.ndarray, stft: STFTConfig = STFTConfig()) -> np.ndarray:
    """|STFT| [F, T] float32 of a mono signal [N], as ``transfersep.audio.STFT`` computes it
    (sqrt-Hann, centred with reflect padding: T = N // hop + 1)."""
    import librosa

    window = np.sqrt(np.hanning(stft.n_fft + 1)[:-1]).astype(np.float32)  # periodic Hann, as torch's
    spec = librosa.stft(
        np.asarray(mix, dtype=np.float32),
        n_fft=stft.n_fft,
        hop_length=stft.hop_length,
        window=window,
        center=True,
        pad_mode="reflect",
    )
    return np.abs(spec).astype(np.float32, copy=False)


# -- running median ------------------------------------------------------------------------------
_MEDIAN_ROWS = None


def _median_rows_kernel():
    """The compiled kernel (built once per process, on first use: about a second)."""
    global _MEDIAN_ROWS
    if _MEDIAN_ROWS is None:
        import numba

        @numba.njit(nogil=True)
        def median_rows(padded, k, out):
            # sliding median of each row: a sorted window updated by one removal and one insertion
            h = k // 2
            win = np.empty(k, padded.dtype)
            for r in range(out.shape[0]):
                for j in range(k):
                    win[j] = padded[r, j]
                win.sort()
                out[r, 0] = win[h]
                for i in range(1, out.shape[1]):
                    old, new = padded[r, i - 1], padded[r, i + k - 1]
                    j = np.searchsorted(win, old)
                    if new > old:
                        while j < k - 1 and win[j + 1] < new:
                            win[j] = win[j + 1]
                            j += 1
                    else:
                        while j > 0 and win[j - 1] > new:
                            win[j] = win[j - 1]
                            j -= 1
                    win[j] = new
                    out[r, i] = win[h]
            return out

        _MEDIAN_ROWS = median_rows
    return _MEDIAN_ROWS


def median_filter_1d(x: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Median over ``size`` (odd) neighbours along ``axis`` of a 2-D array, with scipy.ndimage's
    ``mode="reflect"`` edges: equal to ``scipy.ndimage.median_filter`` with a 1-D kernel."""
    if size == 1:
        return x.copy()
    a = np.ascontiguousarray(x if axis in (1, -1) else x.T)
    h = size // 2
    # 'symmetric' padding repeats the edge sample, as scipy's 'reflect'; wider than the row: tile
    padded = np.pad(a, [(0, 0), (h, h)], mode="symmetric")
    out = _median_rows_kernel()(np.ascontiguousarray(padded), size, np.empty_like(a))
    return out if axis in (1, -1) else np.ascontiguousarray(out.T)


# -- the primitives ------------------------------------------------------------------------------
def hpss_votes(mag: np.ndarray, spec: BootstrapSpec) -> np.ndarray:
    """Group per bin [F, T] (uint8): 0 where librosa's hard harmonic mask holds, else 1."""
    harm = median_filter_1d(mag, spec.hpss_kernel[0], axis=1)
    perc = median_filter_1d(mag, spec.hpss_kernel[1], axis=0)
    return (harm <= spec.hpss_margin * perc).astype(np.uint8)


def pool_frames(mag: np.ndarray, pool: int) -> np.ndarray:
    """Mean of every ``pool`` consecutive frames [F, ceil(T / pool)] (the last block may be shorter)."""
    f, t = mag.shape
    full = t // pool * pool
    blocks = mag[:, :full].reshape(f, -1, pool).mean(axis=2)
    if full < t:
        blocks = np.concatenate([blocks, mag[:, full:].mean(axis=1, keepdims=True)], axis=1)
    return blocks.astype(np.float32, copy=False)


def neighbour_ranks(n_blocks: int, spec: BootstrapSpec) -> np.ndarray:
    """Similarity ranks the median takes: ``repet_neighbours`` evenly spaced ranks among the
    K = ``repet_depth`` x (blocks outside the width band) most similar blocks (all K if fewer)."""
    candidates = n_blocks - (2 * spec.repet_width - 1)
    depth = min(candidates, max(1, int(round(spec.repet_depth * candidates)))) if candidates > 0 else 0
    if depth <= spec.repet_neighbours:
        return np.arange(depth)
    m = spec.repet_neighbours
    return ((np.arange(m) + 0.5) * depth / m).astype(np.int64)


def nearest_blocks(blocks: np.ndarray, ranks: np.ndarray, width: int) -> np.ndarray:
    """Indices [Tb, len(ranks)]: the blocks at those similarity ranks (0 = the most cosine-similar)
    among those at least ``width`` blocks away, per block (the neighbours of
    ``librosa.segment.recurrence_matrix(metric="cosine", width=width)``, in order)."""
    x = torch.from_numpy(blocks.T.astype(np.float64))  # [Tb, F]; float64: near-ties order as sklearn's do
    x /= x.norm(dim=1, keepdim=True).clamp_min(1e-30)
    # torch, not numpy: a loader worker runs torch on one thread, while numpy's BLAS would start its
    # own threads, whose spinning doubled the labelling time on a busy machine
    sim = (x @ x.T).numpy()
    tb = sim.shape[0]
    sim[np.abs(np.arange(tb)[:, None] - np.arange(tb)[None, :]) < width] = -np.inf
    depth = int(ranks[-1]) + 1
    top = np.argpartition(-sim, depth - 1, axis=1)[:, :depth] if depth < tb else np.arange(tb)[None].repeat(tb, 0)
    order = np.argsort(-np.take_along_axis(sim, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1)[:, ranks]


def median_axis1(x: np.ndarray) -> np.ndarray:
    """np.median(x, axis=1); one selection instead of two when the count is odd (the usual case)."""
    k = x.shape[1]
    return np.partition(x, k // 2, axis=1)[:, k // 2] if k % 2 else np.median(x, axis=1)


def repeating_estimate(mag: np.ndarray, spec: BootstrapSpec) -> np.ndarray:
    """R [F, T]: each frame's block replaced by the median of its similar blocks (REPET-SIM)."""
    blocks = pool_frames(mag, spec.repet_pool)
    ranks = neighbour_ranks(blocks.shape[1], spec)
    if len(ranks) == 0:  # too short to compare blocks: nothing can be called non-repeating
        rep = blocks
    else:
        nbr = nearest_blocks(blocks, ranks, spec.repet_width)
        rep = median_axis1(np.ascontiguousarray(blocks.T)[nbr]).T  # [F, Tb]
    return np.repeat(rep, spec.repet_pool, axis=1)[:, : mag.shape[1]].astype(np.float32, copy=False)


def repet_votes(mag: np.ndarray, spec: BootstrapSpec) -> np.ndarray:
    """Group per bin [F, T] (uint8): 0 where librosa's hard background mask holds, else 1."""
    bg = np.minimum(mag, repeating_estimate(mag, spec))
    return (bg <= spec.repet_margin * (mag - bg)).astype(np.uint8)


VOTERS = {"hpss": hpss_votes, "repet": repet_votes}


def combine(votes: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(labels, weights) [F, T] of binary votes: majority (ties to 0) and 2 * agreement - 1."""
    mean = np.mean(np.stack(votes), axis=0, dtype=np.float32)
    labels = (mean > 0.5).astype(np.int64)
    return labels, np.abs(2.0 * mean - 1.0).astype(np.float32)


def label_mixture(
    mix: np.ndarray, spec: BootstrapSpec = BootstrapSpec(), stft: STFTConfig = STFTConfig()
) -> tuple[np.ndarray, np.ndarray]:
    """(dc_labels int64 [T, F], dc_weights float32 [T, F]) of a mixture [N], T = N // hop + 1."""
    mag = magnitude(mix, stft)
    labels, weights = combine([VOTERS[p](mag, spec) for p in spec.primitives])
    return np.ascontiguousarray(labels.T), np.ascontiguousarray(weights.T)


# -- the dataset wrapper ---------------------------------------------------------------------------
class BootstrapLabels(Dataset):
    """Adds ``dc_labels`` (int64 [T, F]) and ``dc_weights`` (float32 [T, F]) to each item of ``base``,
    computed from its ``mix`` alone; everything else of the item passes through."""

    def __init__(self, base: Dataset, spec: BootstrapSpec = BootstrapSpec(), stft: STFTConfig = STFTConfig()):
        self.base, self.spec, self.stft = base, spec, stft

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = dict(self.base[i])
        labels, weights = label_mixture(item["mix"].numpy(), self.spec, self.stft)
        item["dc_labels"] = torch.from_numpy(labels)
        item["dc_weights"] = torch.from_numpy(weights)
        return item


def add_labels(dm: Any, cfg: Mapping[str, Any] | None) -> Any:
    """Wrap a DataModule's training and validation sets (the ``grouped`` items, ``registry.ITEMS``)."""
    from omegaconf import DictConfig, OmegaConf

    node = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg
    spec = BootstrapSpec.from_cfg(node)
    dm.train_set = BootstrapLabels(dm.train_set, spec)
    dm.val_set = BootstrapLabels(dm.val_set, spec)
    return dm
