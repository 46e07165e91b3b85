"""Renaming an internal snapshot of a running QEMU is refused (QMP cannot rename a tag)
with a message that says what to do; nothing changes; its description can be edited."""

from __future__ import annotations

import json

import pytest

from tests.conftest import tag_reads
from tests.live.conftest import LiveDomain

pytestmark = pytest.mark.slow


def test_rename_while_running_says_stop_first_and_changes_nothing(live: LiveDomain) -> None:
    live.write("drv0", 0x31)
    live.write("drv1", 0x32)
    assert live.xlsnap("snapshot-create", "--disk-only", "-n", "s1", "web").code == 0
    live.write("drv0", 0x41)
    events, tags = len(live.events()), live.tags()
    run = live.xlsnap("snapshot-edit", "web", "s1", "--rename", "before-upgrade")
    assert run.code == 2, run.err
    assert len(run.err.strip().splitlines()) == 1
    assert "stop the domain and run this again" in run.err and "--description" in run.err
    assert len(live.events()) == events and live.tags() == tags == {"drv0": ("s1",),
                                                                    "drv1": ("s1",)}
    assert live.vm.has_pattern("drv0", 0x41) and live.status() == "running"
    edit = live.xlsnap("snapshot-edit", "web", "s1", "--description", "kernel 6.6")
    assert edit.code == 0, edit.err
    info = live.xlsnap("snapshot-info", "--json", "web", "s1")
    assert json.loads(info.out)["description"] == "kernel 6.6", info.out
    for disk, byte in zip(live.disks, (0x31, 0x32)):            # s1 itself is intact
        assert tag_reads(disk, "s1", byte)
