"""Numeric snapshot names on a running QEMU: never the snapshot whose qcow2 ID that is.

QEMU's ``snapshot-load`` finds a disk's snapshot by ID before its name (qcow2's
``find_snapshot_by_id_or_name``); ``blockdev-snapshot-delete-internal-sync`` and the
``snapshot-delete`` job find it by name. Each test reads the guest's disks back.
"""

from __future__ import annotations

import pytest

from commands.drivers.qmp import AmbiguousTag
from tests.live.conftest import LiveDomain

pytestmark = pytest.mark.slow


def _alpha_then_one(live: LiveDomain) -> None:
    live.write("drv0", 0xAA)
    live.write("drv1", 0xA1)
    assert live.xlsnap("snapshot-create", "-n", "alpha", "web").code == 0     # ID 1
    live.write("drv0", 0xBB)
    live.write("drv1", 0xB1)
    assert live.xlsnap("snapshot-create", "-n", "1", "web").code == 0         # ID 2
    live.write("drv0", 0xCC)
    live.write("drv1", 0xC1)


def test_revert_by_a_name_that_is_another_snapshots_id_is_refused(live: LiveDomain) -> None:
    _alpha_then_one(live)
    before = len(live.events())
    run = live.xlsnap("snapshot-revert", "-n", "1", "web")
    assert run.code == 2, (run.code, run.out, run.err)
    assert "also the ID of another snapshot" in run.err and "'alpha'" in run.err
    assert len(run.err.strip().splitlines()) == 1
    assert len(live.events()) == before                   # nothing recorded
    # the guest's disks are as they were: neither alpha's nor 1's content
    assert live.vm.has_pattern("drv0", 0xCC) and live.vm.has_pattern("drv1", 0xC1)
    assert live.status() == "running"
    assert live.tags() == {"drv0": ("alpha", "1"), "drv1": ("alpha", "1")}


def test_the_driver_refuses_to_load_an_ambiguous_tag(live: LiveDomain) -> None:
    _alpha_then_one(live)
    with pytest.raises(AmbiguousTag, match="ID 1 is 'alpha'"):
        live.qmp().snapshot_load("1", "disk0", ["disk0", "disk1"])
    assert live.vm.has_pattern("drv0", 0xCC)


def test_revert_by_a_numeric_name_without_a_clash_loads_that_snapshot(
        live: LiveDomain) -> None:
    live.write("drv0", 0xAA)
    live.write("drv1", 0xA1)
    assert live.xlsnap("snapshot-create", "-n", "1", "web").code == 0          # ID 1 is '1'
    live.write("drv0", 0xBB)
    live.write("drv1", 0xB1)
    assert live.xlsnap("snapshot-create", "-n", "7", "web").code == 0          # ID 2
    live.write("drv0", 0xCC)
    live.write("drv1", 0xC1)
    run = live.xlsnap("snapshot-revert", "-n", "7", "web")
    assert run.code == 0, run.err
    assert live.vm.has_pattern("drv0", 0xBB) and live.vm.has_pattern("drv1", 0xB1)
    run = live.xlsnap("snapshot-revert", "-n", "1", "web")
    assert run.code == 0, run.err
    assert live.vm.has_pattern("drv0", 0xAA) and live.vm.has_pattern("drv1", 0xA1)


def test_live_delete_by_a_numeric_name_keeps_the_snapshot_with_that_id(
        live: LiveDomain) -> None:
    _alpha_then_one(live)
    run = live.xlsnap("snapshot-delete", "-n", "1", "web")
    assert run.code == 0, run.err
    assert live.tags() == {"drv0": ("alpha",), "drv1": ("alpha",)}
    # alpha still holds its own content: revert to it and read the disks
    run = live.xlsnap("snapshot-revert", "-n", "alpha", "web")
    assert run.code == 0, run.err
    assert live.vm.has_pattern("drv0", 0xAA) and live.vm.has_pattern("drv1", 0xA1)
