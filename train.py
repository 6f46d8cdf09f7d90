"""The paper's entry point: ``python train.py -m pretrain=musdb,slakh,both augment=none,pitch,stretch,incoherent``."""

from transfersep.cli.train import main

if __name__ == "__main__":
    main()
