"""A non-editable install works from any folder: the wheel ships the configs (conf/ and sweeps/), and
`transfersep train` trains from a folder outside the repository with nothing of the checkout on the path."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from project import ROOT


def _checkout_copy(dest: Path) -> Path:
    """The tracked files of the repository (links kept as links), so the build never writes into it."""
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for f in files:
        src, dst = ROOT / f, dest / f
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), dst)
        elif src.is_file():
            shutil.copy2(src, dst)
    return dest


def test_wheel_install_trains_outside_the_repository(tmp_path: Path) -> None:
    repo = _checkout_copy(tmp_path / "checkout")
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(site),
         str(repo)],
        check=True, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    shipped = site / "transfersep" / "run" / "conf"
    assert (shipped / "train.yaml").is_file() and not shipped.is_symlink()
    assert (shipped / "sweeps" / "finetune.yaml").is_file()
    from transfersep.model.shipped import SHIPPED, file_sha256

    for m in SHIPPED.values():  # the pretrained models travel in the wheel, byte for byte
        assert file_sha256(site / "transfersep" / "model" / "shipped" / m.file) == m.file_sha256

    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TRANSFERSEP_CONF")}
    env.update(PYTHONPATH=str(site), WANDB_MODE="offline", OMP_NUM_THREADS="1")
    where = subprocess.run(
        [sys.executable, "-c", "import transfersep.run.config as c; print(c.__file__, c.conf_dir())"],
        cwd=work, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    module_file, conf = where.stdout.split()
    assert Path(module_file).is_relative_to(site) and Path(conf).is_relative_to(site)
    listed = subprocess.run(
        [sys.executable, "-m", "transfersep.cli", "models", "--check"],
        cwd=work, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert listed.returncode == 0 and str(site) in listed.stdout, listed.stdout + listed.stderr

    proc = subprocess.run(
        [sys.executable, "-m", "transfersep.cli", "train", "experiment=tiny", "data.generated=true", "pretrain=slakh",
         "logger=csv"],
        cwd=work, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_dir = work / "runs" / "tiny" / "pretrain" / "slakh-none"  # paths.root_dir is the launch folder
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "finished" and (run_dir / "final.ckpt").is_file()
