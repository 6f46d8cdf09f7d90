"""SI-SDR evaluation, learning curves, paired Wilcoxon tests and the paper's figures and tables.

- ``sisdr``: the metric and the silent-reference rule;
- ``evaluate.evaluate``: scores.csv + result.json of a model on the fixed test excerpts;
- ``curve.SISDRCurve``: Lightning callback writing curve.csv during training;
- ``stats``: one-sided Wilcoxon signed-rank tests on paired per-excerpt scores, and their
  counterpart over independent units (exact test, smallest reachable p, intervals);
- ``blocks``: independent units of a test list (tracks, or time blocks that share no audio);
- ``results`` / ``studies`` / ``provenance``: loading a study's runs, refusing folders of several
  studies, what the study's data and options were;
- ``comparisons``: every comparison of the report, the paper's test and the independent one;
- ``report``: ``transfersep report STUDY_DIR --out OUT`` (``python -m transfersep.report.build``).

Submodules are imported lazily (``from transfersep.evaluation.evaluate import evaluate``) so that the
report does not import Lightning and training does not import matplotlib.
"""
