"""SI-SDR evaluation, learning curves, paired Wilcoxon tests and the paper's figures and tables.

- ``sisdr``: the metric and the silent-reference rule;
- ``evaluate.evaluate``: scores.csv + result.json of a model on the fixed test excerpts;
- ``curve.SISDRCurve``: Lightning callback writing curve.csv during training;
- ``stats``: one-sided Wilcoxon signed-rank tests on paired per-excerpt scores;
- ``report``: ``python -m transfersep.eval.report RUNS_DIR --out OUT``.

Submodules are imported lazily (``from transfersep.eval.evaluate import evaluate``) so that the
report does not import Lightning and training does not import matplotlib.
"""
