"""``transfersep models``: the pretrained models shipped with the package (``transfersep.model.shipped``)."""

from __future__ import annotations

import argparse


def add_models(p: argparse.ArgumentParser) -> None:
    p.add_argument("--check", action="store_true", help="hash each shipped file and compare with its recorded digest")


def cmd_models(args: argparse.Namespace) -> int:
    from transfersep.model.shipped import SHIPPED, file_sha256

    bad = 0
    for m in SHIPPED.values():
        sizes = ", ".join(f"{k}={v}" for k, v in m.sizes.items())
        print(f"{m.name}  ({m.path})")
        print(f"  trained on   {m.trained_on}")
        print(f"  sizes        {sizes}; {m.parameters / 1e6:.2f} M parameters")
        for what, score in m.scores.items():
            print(f"  score        {what}: {score}")
        print(f"  weights      sha256 {m.weights_sha256} (over the tensors; file sha256 {m.file_sha256})")
        if args.check:
            ok = m.path.is_file() and file_sha256(m.path) == m.file_sha256
            bad += not ok
            print(f"  check        {'file matches its digest' if ok else 'MISSING OR CHANGED: reinstall the package'}")
        print(f"  reproduce    {m.reproduce}")
        print(f"  note         {m.caveat}")
        use = f"transfersep separate song.wav --model {m.name}; transfersep train experiment=cpu init_from={m.name} ..."
        print(f"  use          {use}")
    return 1 if bad else 0
