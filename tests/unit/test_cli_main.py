"""The CLI builds only the sub-command it runs; its shortcut agrees with typer's parsing."""

from __future__ import annotations

import importlib

import pytest
import typer

from commands.cli import main


def test_value_options_are_the_global_options_that_take_a_value() -> None:
    group = typer.main.get_command(main.app)
    options = [p for p in group.params if p.param_type_name == "option"]
    valued = {name for p in options if not p.is_flag for name in p.opts + p.secondary_opts}
    flags = {name for p in options if p.is_flag for name in p.opts + p.secondary_opts}
    assert valued == main.VALUE_OPTIONS
    assert flags == main.FLAG_OPTIONS


def test_each_module_registers_the_command_it_is_listed_under() -> None:
    for name, module in main.SUBCOMMANDS.items():
        scratch = typer.Typer()
        scratch.callback()(lambda: None)
        importlib.import_module(f"commands.cli.{module}").register(scratch)
        group = typer.main.get_command(scratch)
        assert list(group.commands) == [name]  # a group (typer's vendored click)


@pytest.mark.parametrize("argv, invoked", [
    (["snapshot-create", "web"], "snapshot-create"),
    (["-v", "--home", "/h", "--toolstack=qemu", "history", "--json"], "history"),
    (["--home", "history", "snapshot-list", "web"], "snapshot-list"),
    (["--ledger", "l.sqlite", "projections", "rebuild"], "projections"),
    (["history", "snapshot-create"], "history"),
    ([], None),
    (["--help", "snapshot-create"], None),
    (["-vh", "snapshot-create"], None),
    (["--", "history"], None),
    (["--bogus", "history"], None),
    (["snapshot-creat", "web"], None),
    (["--home"], None),
    (["--home", "history"], None),
])
def test_invoked_is_the_first_word_after_the_global_options(
        argv: list[str], invoked: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("_XLSNAP_COMPLETE", raising=False)
    assert main._invoked(argv) == invoked


def test_shell_completion_gets_every_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("_XLSNAP_COMPLETE", "bash_complete")
    assert main._invoked(["snapshot-create", "web"]) is None
