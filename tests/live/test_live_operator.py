"""The operator's chores on a running QEMU: a rename of an internal snapshot is refused
(QMP cannot rename a tag) with a message saying what to do, nothing changed, while its
description can be edited; a prune deletes through QMP, as one operation."""

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


def test_prune_of_a_running_domain_deletes_through_qmp_in_one_operation(
        live: LiveDomain) -> None:
    for k in range(3):
        live.write("drv0", 0x50 + k)
        live.write("drv1", 0x60 + k)
        assert live.xlsnap("snapshot-create", "--disk-only", "-n", f"s{k}", "web").code == 0
    live.write("drv0", 0x5F)
    run = live.xlsnap("prune", "--keep-last", "1", "web")
    assert run.code == 0, run.err
    assert "2 deleted, 1 kept" in run.out
    assert [s[1] for s in live.steps()] == ["live-tag-delete", "live-tag-delete",
                                           "metadata-remove"] * 2
    assert live.tags() == {"drv0": ("s2",), "drv1": ("s2",)}
    assert live.status() == "running" and live.vm.has_pattern("drv0", 0x5F)
    for disk, byte in zip(live.disks, (0x52, 0x62)):
        assert tag_reads(disk, "s2", byte)
