"""Overrides as users type them: ``~`` in a path, a mistyped key."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_train_console import TINY, files, train

from transfersep.cli.train import expand_home


def test_a_home_path_in_an_override_is_expanded(tmp_path: Path) -> None:
    home = tmp_path / "home"
    args = ["experiment=tiny", "logger=csv", "pretrain=none", "downstream=bach10", "dry_run=true"]
    p = train(tmp_path, *args, "paths.bach10=~/Bach10", HOME=str(home))
    assert "LexerNoViableAltException" not in p.stderr
    (line,) = p.stderr.strip().splitlines()
    assert f"root {home / 'Bach10'} does not exist" in line, line  # looked where the user meant
    assert files(tmp_path / "runs") == []


@pytest.mark.parametrize(
    "given, expected",
    [
        ("paths.bach10=~/Bach10", "paths.bach10=/h/Bach10"),
        ("paths.bach10=~/My Bach10", "paths.bach10='/h/My Bach10'"),
        ("+paths.extra=~", "+paths.extra=/h"),
        ("~paths.bach10", "~paths.bach10"),  # Hydra's delete, not a path
        ("paths.bach10='~/Bach10'", "paths.bach10='~/Bach10'"),  # quoted: Hydra takes it as it is
        ("pretrain=slakh", "pretrain=slakh"),
    ],
)
def test_expand_home(given: str, expected: str, monkeypatch) -> None:
    monkeypatch.setenv("HOME", "/h")
    assert expand_home([given]) == [expected]


@pytest.mark.parametrize(
    "override, expected",
    [
        ("budget.finetun=100", "error: no key budget.finetun; did you mean budget.finetune"),
        ("budgt.finetune=100", "error: no key budgt; did you mean budget"),
    ],
)
def test_a_mistyped_key_gets_the_closest_key(tmp_path: Path, override: str, expected: str) -> None:
    p = train(tmp_path, *TINY, "pretrain=none", "downstream=bach10", "dry_run=true", override)
    assert p.returncode == 2
    (line,) = p.stderr.strip().splitlines()
    assert line == expected
    assert "+" not in line  # never Hydra's advice to add the mistyped key
    assert files(tmp_path / "runs") == []
