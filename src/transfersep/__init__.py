"""transfersep: transfer learning for music source separation (Bugler, Pardo, Seetharaman)."""

__version__ = "0.1.0"
