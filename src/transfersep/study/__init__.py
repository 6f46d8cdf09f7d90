"""The study: its grid (``grid``, read from ``sweeps/grid.yaml``), its stages launched in order
(``launch``), where it stands (``status``) and which folder is one study (``folders``)."""
