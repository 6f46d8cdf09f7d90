"""``python -m transfersep.cli <verb> ...`` is ``transfersep <verb> ...``."""

import sys

from transfersep.cli import main

sys.exit(main())
