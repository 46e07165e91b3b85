"""A delete checks every disk before its first change, and finishes an incomplete snapshot.

Real obstacles: ``qemu-io`` holding a disk open (QEMU's image lock), ``chattr +i``, and
a tag removed by hand with ``qemu-img``.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Scratch, held_open, qemu_img, read_pattern, tags, write_pattern


def _two_snapshots(scratch: Scratch, xlsnap) -> None:
    write_pattern(scratch.disk_a, 0x11)
    write_pattern(scratch.disk_b, 0x12)
    assert xlsnap("snapshot-create", "-n", "s1", "web").code == 0
    write_pattern(scratch.disk_a, 0x21)
    write_pattern(scratch.disk_b, 0x22)


def _delete_events(xlsnap) -> list[dict]:
    events = json.loads(xlsnap("history", "--json", "web").out)
    return [e for e in events if e["event"] == "OperationStarted"
            and e["data"]["kind"] == "delete"]


def _revert_and_read(scratch: Scratch, xlsnap) -> None:
    assert xlsnap("snapshot-revert", "-n", "s1", "web").code == 0
    assert read_pattern(scratch.disk_a, 0x11) and read_pattern(scratch.disk_b, 0x12)


def test_delete_with_a_locked_disk_changes_nothing(scratch: Scratch, xlsnap) -> None:
    _two_snapshots(scratch, xlsnap)
    with held_open(scratch.disk_b):
        run = xlsnap("snapshot-delete", "-n", "s1", "web")
    assert run.code == 1, run.err
    assert "'xvdb'" in run.err and "in use by another process" in run.err
    assert tags(scratch.disk_a) == ["s1"] and tags(scratch.disk_b) == ["s1"]
    assert _delete_events(xlsnap) == []
    assert read_pattern(scratch.disk_a, 0x21) and read_pattern(scratch.disk_b, 0x22)
    _revert_and_read(scratch, xlsnap)  # the snapshot is whole: it reverts...
    assert xlsnap("snapshot-delete", "-n", "s1", "web").code == 0  # ...and deletes
    assert tags(scratch.disk_a) == [] and tags(scratch.disk_b) == []


def _immutable(path: Path, on: bool) -> bool:
    flag = "+i" if on else "-i"
    return subprocess.run(["chattr", flag, str(path)], capture_output=True,
                          timeout=30).returncode == 0


def test_delete_with_an_immutable_disk_changes_nothing(scratch: Scratch, xlsnap) -> None:
    _two_snapshots(scratch, xlsnap)
    if not _immutable(scratch.disk_b, True):
        pytest.skip("chattr +i is not supported on this filesystem")
    try:
        run = xlsnap("snapshot-delete", "-n", "s1", "web")
    finally:
        _immutable(scratch.disk_b, False)
    assert run.code == 2, run.err
    assert "'xvdb'" in run.err and "immutable" in run.err and "nothing changed" in run.err
    assert tags(scratch.disk_a) == ["s1"] and tags(scratch.disk_b) == ["s1"]
    assert _delete_events(xlsnap) == []
    _revert_and_read(scratch, xlsnap)
    assert xlsnap("snapshot-delete", "-n", "s1", "web").code == 0
    assert tags(scratch.disk_a) == [] and tags(scratch.disk_b) == []


def test_delete_finishes_a_snapshot_whose_tag_is_gone_from_one_disk(scratch: Scratch,
                                                                    xlsnap) -> None:
    _two_snapshots(scratch, xlsnap)
    assert xlsnap("snapshot-create", "-n", "s2", "web").code == 0
    qemu_img("snapshot", "-d", "s1", str(scratch.disk_b))  # by hand, behind xlsnap's back
    assert xlsnap("snapshot-revert", "-n", "s1", "web").code == 3  # drift: refused
    run = xlsnap("snapshot-delete", "-n", "s1", "web")
    assert run.code == 0, run.err
    assert "'xvdb'" in run.err and "no tag 's1' already" in run.err
    assert tags(scratch.disk_a) == ["s2"] and tags(scratch.disk_b) == ["s2"]
    rows = json.loads(xlsnap("snapshot-list", "--json", "web").out)
    assert [r["name"] for r in rows] == ["s2"]
    events = json.loads(xlsnap("history", "--json", "web").out)
    absent = [e for e in events if e["event"] == "StepFinished"
              and e["data"]["result"].get("absent")]
    assert len(absent) == 1 and str(scratch.disk_b) in absent[0]["data"]["result"]["argv"]
    assert xlsnap("check", "web").code == 0
    assert read_pattern(scratch.disk_a, 0x21) and read_pattern(scratch.disk_b, 0x22)
    write_pattern(scratch.disk_a, 0x31)
    assert xlsnap("snapshot-revert", "-n", "s2", "web").code == 0
    assert read_pattern(scratch.disk_a, 0x21) and read_pattern(scratch.disk_b, 0x22)
