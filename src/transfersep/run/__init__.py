"""One run of the grid, from its grid point (``point``) and plan (``plan``) through its life
(``lifecycle``: parent checks, data, ``fit`` or ``probe``, ``scoring``) to its records (``records``).
Errors a user fixes are in ``errors`` (types), ``configline``, ``suggest``, ``parent`` and
``failures``. Submodules are imported where used, so ``transfersep status`` starts without torch."""
