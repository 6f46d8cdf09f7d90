"""Entry point of every run of the study (see src/transfersep/train.py).

    python train.py -m pretrain=musdb,slakh,both augment=none,pitch,stretch,incoherent
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))  # works before `make install` too

from transfersep.train import main  # noqa: E402

if __name__ == "__main__":
    main()
