"""The product finds its extra commands through the `medpubsub.commands` entry-point group and
never imports the harness: a service image without the harness still runs."""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

import pytest

from medpubsub.cli import COMMANDS_GROUP, SERVICES, build_parser, main
from tests.conftest import PROJECT


def subcommands(with_extensions: bool) -> set[str]:
    parser = build_parser(with_extensions)
    action = next(a for a in parser._actions if a.dest == "command")
    return set(action.choices or ())


def test_the_harness_commands_arrive_through_the_entry_point_group() -> None:
    services = {"patient", "medicine", "make-order", "dispatcher"}
    assert subcommands(with_extensions=False) == services
    assert subcommands(with_extensions=True) >= services | {"kafka", "up", "status", "down", "demo"}
    assert COMMANDS_GROUP == "medpubsub.commands"


def test_no_module_of_the_product_imports_the_harness() -> None:
    importing = []
    for path in sorted((PROJECT / "system").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(name.split(".")[0] == "pytest_medpubsub" for name in names):
                importing.append(str(path.relative_to(PROJECT)))
    assert importing == []


def test_each_service_has_its_own_help_and_runs_its_own_function() -> None:
    parser = build_parser(with_extensions=False)
    action = next(a for a in parser._actions if a.dest == "command")
    assert isinstance(action, argparse._SubParsersAction)
    choices: dict[str, argparse.ArgumentParser] = action.choices
    runs = {name: choices[name].parse_args([]).func for name in SERVICES}
    assert len(set(runs.values())) == len(SERVICES)
    assert all(choices[name].description for name in SERVICES)


@pytest.mark.parametrize("command", ["status", "down"])
def test_status_and_down_with_nothing_running_say_so_and_exit_1(
    command: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MEDPUBSUB_STATE_FILE", str(tmp_path / "local.json"))
    assert main([command]) == 1
    error = capsys.readouterr().err
    assert error.startswith(f"medpubsub {command}: no local medpubsub is running")
    assert "medpubsub up" in error
