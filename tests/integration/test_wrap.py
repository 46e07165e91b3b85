"""wrap: a snapshot before and after a command, linked, with the command's exit code."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

from tests.conftest import Run, Scratch, read_pattern, tags, write_pattern

Xlsnap = Callable[..., Run]


def test_pre_and_post_hold_the_disk_before_and_after_the_command(scratch: Scratch,
                                                                  xlsnap: Xlsnap) -> None:
    write_pattern(scratch.disk_a, 0x11)
    command = ["qemu-io", "-f", "qcow2", "-c", "write -P 0x22 0 64k", str(scratch.disk_a)]
    run = xlsnap("wrap", "web", "-n", "up", "--", *command)
    assert run.code == 0, run.err
    assert tags(scratch.disk_a) == ["up-pre", "up-post"]
    pre = json.loads(xlsnap("snapshot-info", "--json", "web", "up-pre").out)
    post = json.loads(xlsnap("snapshot-info", "--json", "web", "up-post").out)
    assert pre["wrap"]["pair"] == post["wrap"]["pair"]
    assert (pre["wrap"]["partner"], post["wrap"]["partner"]) == ("up-post", "up-pre")
    assert post["description"].endswith("exited 0") and post["parent"] == "up-pre"
    assert xlsnap("snapshot-revert", "web", "up-pre").code == 0
    assert read_pattern(scratch.disk_a, 0x11)
    assert xlsnap("snapshot-revert", "web", "up-post").code == 0
    assert read_pattern(scratch.disk_a, 0x22)


def test_the_commands_exit_code_is_recorded_and_returned(scratch: Scratch,
                                                         xlsnap: Xlsnap) -> None:
    run = xlsnap("wrap", "web", "-n", "w", "--", sys.executable, "-c", "raise SystemExit(7)")
    assert run.code == 7
    post = json.loads(xlsnap("snapshot-info", "--json", "web", "w-post").out)
    assert post["wrap"]["exit_code"] == 7 and post["description"].endswith("exited 7")
    missing = xlsnap("wrap", "web", "-n", "m", "--", "no-such-command-xlsnap")
    assert missing.code == 127 and "m-post" in tags(scratch.disk_a)


def test_no_command_runs_when_the_pre_snapshot_fails(scratch: Scratch, xlsnap: Xlsnap) -> None:
    assert xlsnap("snapshot-create", "-n", "x-pre", "web").code == 0
    marker = scratch.root / "ran"
    run = xlsnap("wrap", "web", "-n", "x", "--", "touch", str(marker))
    assert run.code == 2 and "x-pre" in run.err
    assert not marker.exists() and tags(scratch.disk_a) == ["x-pre"]
