"""The mask step every separator here shares: mixture STFT -> masks -> masked spectrograms ->
inverse STFT with the mixture's phase.

The trained separator takes its masks from the mask head (``separate_masks``: training's
``SeparationSystem.separate``, a loaded model's ``separate``); the zero-shot probe from k-means
clusters of the embeddings (``model.clusters``). Only where the masks come from differs.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from transfersep.audio import STFT
from transfersep.model.chimera import ChimeraNet


def apply_masks(stft: STFT, mix: Tensor, masks_of: Callable[[Tensor], Tensor]) -> Tensor:
    """Waveforms ``[B, C, N]`` of mixtures ``[B, N]``: ``masks_of(spec)`` turns the mixture STFT
    ``spec [B, T, F]`` (complex) into masks ``[B, C, T, F]``; each masked spectrogram is inverted
    with the mixture's phase to the mixture's length."""
    spec = stft(mix)
    return stft.inverse(masks_of(spec) * spec.unsqueeze(1), mix.shape[-1])


def separate_masks(net: ChimeraNet, stft: STFT, mix: Tensor) -> Tensor:
    """Waveforms ``[B, C, N]`` of mixtures ``[B, N]`` through the mask head.

    Only the mask head is computed: the embedding head (257*D outputs per frame, about a fifth of
    the model's work) serves the training loss only.
    """
    return apply_masks(stft, mix, lambda spec: net.mask(net.features(spec.abs())))
