"""The report of a study: ``transfersep report STUDY_DIR --out OUT`` (``build.main``).

Its modules, from the runs on disk to the files written:

- ``scan``: the one scan of a study (every evaluated run read once; stale runs left out and named);
  ``results``: what a run is (its grid point, scores, curve) and the grid the study is expected to have;
  ``scores``: a run's scores.csv, checked, and its per-excerpt means;
  ``header``: what the study's data and options were;
- ``stats``, ``blocks``, ``drift``: the paper's Wilcoxon test and its counterpart over independent
  units; ``recipe``, ``replicates``: the tests over replicates; ``comparisons``: every comparison;
- the data of each figure: ``panels`` (Figures 1-3), ``length`` (Figure 4);
- their drawing: ``figures`` (one function per figure) on ``draw`` (colours, bars, PNG writing);
- their prose: ``text`` (report.md's sections) with ``mdtables`` (its tables); ``numbers``: the one
  way a number is written; ``tables``: the csv files and Table 2's image;
- ``build``: ``write_report``, the order of all of the above, and the command line.

Adding a figure: its data, its drawing, its prose, each in its layer above (the recipe is in
the documentation, "Extending transfersep").

Submodules are imported where used so that the report does not import Lightning and training does
not import matplotlib.
"""
