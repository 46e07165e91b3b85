"""Every forensics command explains itself with an example."""

from __future__ import annotations

import pytest

COMMANDS = ["history", "export", "replay", "diff", "seal", "verify", "prove", "verify-proof"]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_usage_and_an_example(xlsnap, command: str) -> None:
    run = xlsnap(command, "--help")
    assert run.code == 0, run.err
    assert f"xlsnap {command}" in run.out and "Example" in run.out
