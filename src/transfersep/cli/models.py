"""``transfersep models``: the pretrained models shipped with the package (``transfersep.model.shipped``)."""

from __future__ import annotations

import argparse


def add_models(p: argparse.ArgumentParser) -> None:
    p.add_argument("--check", action="store_true", help="hash each shipped file and compare with its recorded digest")
    p.add_argument(
        "--compare",
        metavar="MODEL",
        help="a package or run directory: say which shipped model has the same weights (exit 1 if none), "
        "the check that a reproduction of a shipped model's recipe gave the same weights",
    )


def cmd_models(args: argparse.Namespace) -> int:
    from transfersep.model.shipped import SHIPPED, file_sha256, weights_sha256_of

    if args.compare:
        digest = weights_sha256_of(args.compare)
        same = [m.name for m in SHIPPED.values() if m.weights_sha256 == digest]
        print(f"{args.compare}: weights sha256 {digest}")
        print(f"  same weights as the shipped {', '.join(same)}" if same else "  no shipped model has these weights")
        return 0 if same else 1
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
        train = f"transfersep train experiment={m.experiment} init_from={m.name} ..."
        use = f"transfersep separate song.wav --model {m.name}; {train}"
        print(f"  use          {use}")
    return 1 if bad else 0
