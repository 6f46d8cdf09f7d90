"""The verb table: every verb names one function, where its role lives, called one way."""

from __future__ import annotations

import importlib
import inspect

from transfersep.cli import VERBS, main


def test_every_verb_names_a_function_of_argv_and_its_parser() -> None:
    for name, verb in VERBS.items():
        module, function = verb.run.split(":")
        fn = getattr(importlib.import_module(module), function)
        assert list(inspect.signature(fn).parameters)[:2] == ["argv", "parser"], name


def test_only_the_hydra_verbs_live_in_the_command_line_package() -> None:
    in_cli = {name for name, verb in VERBS.items() if verb.run.startswith("transfersep.cli.")}
    assert in_cli == {"train", "probe"}  # Hydra's app sits above the study it launches


def test_a_verbs_usage_error_is_its_exit_code(capsys) -> None:
    assert main(["export"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: transfersep export ")
    last = "transfersep export: error: the following arguments are required: RUN_DIR_OR_CKPT"
    assert err.strip().splitlines()[-1] == last
