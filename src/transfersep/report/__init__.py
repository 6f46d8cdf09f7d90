"""The report of a study: ``transfersep report STUDY_DIR --out OUT`` (``build.main``).

Its modules, from the runs on disk to the files written:

- ``scan``: the one scan of a study (every evaluated run read once; stale runs left out and named);
  ``results``: what a run is (its grid key, scores, curve) and the grid the study is expected to have;
  ``scores``: a run's scores.csv, checked, and its per-excerpt means;
  ``header``: what the study's data and options were;
- ``stats``, ``blocks``, ``drift``: the paper's Wilcoxon test and its counterpart over independent
  units; ``recipe``, ``replicates``: the tests over replicates; ``comparisons``: every comparison;
- the data of each figure: ``panels`` (Figures 1-3), ``length`` (Figure 4);
- their drawing: ``figures`` (one function per figure) on ``draw`` (colours, bars, PNG writing);
- their prose: ``text`` (report.md's sections) with ``mdtables`` (its tables); ``numbers``: the one
  way a number is written; ``tables``: the csv files and Table 2's image;
- ``build``: ``write_report``, the order of all of the above, and the command line.

Adding a figure (Figure N):

1. its data: a function from the scan (``scan.Scan``: the paper's grid by grid key, Figure 4's axis
   by length key) and the comparisons to plain values, in ``panels`` or a module of its own;
2. its drawing: ``figures.figureN(path, ...)`` from those values only, built on ``draw`` (an absent
   value is drawn "absent", never dropped);
3. its prose: a section function in ``text``, its tables in ``mdtables``, every number through
   ``numbers.num``;
4. wire it in ``build.write_report`` (and ``panels.draw_figures``), and test it on a study of the
   tiny model.

Submodules are imported where used so that the report does not import Lightning and training does
not import matplotlib.
"""
