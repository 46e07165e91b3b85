"""Every sub-command's ``--help`` shows an example of itself (the typer app, enumerated)."""

from __future__ import annotations

from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from commands.cli.main import SUBCOMMANDS, _register, app


def _commands() -> list[tuple[str, ...]]:
    """Every command path of the app, groups' sub-commands included."""
    _register()
    paths: list[tuple[str, ...]] = []

    def walk(command: Any, path: tuple[str, ...]) -> None:  # typer's (vendored) click command
        if path:
            paths.append(path)
        if hasattr(command, "commands"):  # a group
            for name, sub in command.commands.items():
                walk(sub, (*path, name))

    walk(typer.main.get_command(app), ())
    return paths


COMMANDS = _commands()


def test_every_listed_sub_command_is_enumerated() -> None:
    assert set(SUBCOMMANDS) <= {path[0] for path in COMMANDS}
    assert len(COMMANDS) >= len(SUBCOMMANDS)


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_help_has_an_example_of_the_command(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"],
                                prog_name="xlsnap", terminal_width=200)
    assert result.exit_code == 0, result.output
    text = result.output
    example = text[text.find("Example"):] if "Example" in text else ""
    assert example, f"xlsnap {' '.join(path)} --help shows no example"
    assert f"xlsnap {' '.join(path)}" in example, example
