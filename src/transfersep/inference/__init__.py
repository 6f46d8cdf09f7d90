"""Separating audio with a trained model: the Python API (``api``: ``transfersep.load_model``), long
recordings in overlapping chunks (``chunking``, ``runner``), reading inputs and writing stems
(``inputs``, ``separate``)."""
