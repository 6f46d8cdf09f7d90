"""Scoring separators: SI-SDR with its silent-reference rule (``sisdr``), a model on the fixed test
excerpts into ``scores.csv`` / ``result.json`` (``evaluate``), the learning curve during training
(``curve``), and matching or grouping unlabelled outputs onto the references (``matching``,
``grouping``). Submodules are imported where used, so the report stays free of Lightning."""
