"""The model's verbs: ``transfersep models`` (the pretrained models shipped with the package,
``transfersep.model.shipped``) and ``transfersep export`` (a trained run as one model package)."""

from __future__ import annotations

import argparse
from pathlib import Path

from transfersep.files import PACKAGE


def models(argv: list[str], parser: argparse.ArgumentParser) -> int:
    """``transfersep models``: each shipped model, its sizes, scores and how to reproduce it."""
    parser.add_argument(
        "--check", action="store_true", help="hash each shipped file and compare with its recorded digest"
    )
    parser.add_argument(
        "--compare",
        metavar="MODEL",
        help="a package or run directory: say which shipped model has the same weights (exit 1 if none), "
        "the check that a reproduction of a shipped model's recipe gave the same weights",
    )
    args = parser.parse_args(argv)
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


def export(argv: list[str], parser: argparse.ArgumentParser) -> int:
    """``transfersep export``: package a finished run (or a checkpoint) and read the package back."""
    parser.add_argument("source", metavar="RUN_DIR_OR_CKPT", help="a finished run directory or a .ckpt file")
    parser.add_argument("--out", "-o", default=None, help=f"package path (default: <run dir>/{PACKAGE})")
    args = parser.parse_args(argv)
    from transfersep.model.export import export_model
    from transfersep.model.loading import load_model

    src = Path(args.source)
    out = Path(args.out) if args.out else (src if src.is_dir() else src.parent) / PACKAGE
    if out.resolve() == src.resolve():
        raise ValueError(f"--out {out} is the source itself; choose another path")
    path = export_model(src, out)
    lm = load_model(path)  # read back: the package is complete and loads
    m = lm.meta["model"]
    print(
        f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB): sources {lm.source_names}, "
        f"BLSTM {m['num_layers']}x{m['hidden_size']}, D={m['embedding_dim']}, steps {lm.meta.get('steps')}"
    )
    return 0
