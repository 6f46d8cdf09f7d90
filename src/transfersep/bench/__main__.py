import sys

from transfersep.bench.cli import main

sys.exit(main())
