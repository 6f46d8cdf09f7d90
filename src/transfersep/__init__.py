"""transfersep: transfer learning for music source separation (Bugler, Pardo, Seetharaman).

Python API (see ``transfersep.inference.api``)::

    model = transfersep.load_model("model.safetensors")   # or a finished run directory
    stems = model.separate(waveform, sample_rate)          # {source: waveform}, input's rate and shape
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["load_model", "__version__"]


def load_model(path: Any, device: str = "auto", precision: str = "auto", **options: Any):
    """See ``transfersep.inference.api.load_model`` (imported on first use: ``import transfersep`` stays light)."""
    from transfersep.inference.api import load_model as _load

    return _load(path, device, precision, **options)
