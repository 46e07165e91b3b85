"""A qcow2 image marked corrupt: refused before a create, named after a failed one."""

from __future__ import annotations

import json
import os

from tests.conftest import Scratch, image_info, tags


def _corrupt_flag(path) -> bool:
    return image_info(path)["format-specific"]["data"]["corrupt"]


def test_a_create_that_marks_an_image_corrupt_says_so_and_the_next_is_refused(
        scratch: Scratch, xlsnap) -> None:
    os.truncate(scratch.disk_a, 65536)      # qemu-img snapshot -c would overwrite its tables
    assert not _corrupt_flag(scratch.disk_a)
    run = xlsnap("snapshot-create", "-n", "s1", "web")
    assert _corrupt_flag(scratch.disk_a)
    assert run.code == 3, run.err
    assert "nothing changed" not in run.err
    assert f"marked {scratch.disk_a} corrupt" in run.err
    assert "Traceback" not in run.err
    assert tags(scratch.disk_b) == []
    assert json.loads(xlsnap("snapshot-list", "--json", "web").out) == []
    events = len(json.loads(xlsnap("history", "--json", "web").out))
    again = xlsnap("snapshot-create", "-n", "s2", "web")
    assert again.code == 2 and f"{scratch.disk_a} is marked corrupt" in again.err
    assert len(json.loads(xlsnap("history", "--json", "web").out)) == events
    check = xlsnap("check", "--json", "web")
    assert check.code == 3
    assert [d["kind"] for d in json.loads(check.out)] == ["corrupt-image"]


def test_a_revert_of_an_image_marked_corrupt_is_refused(scratch: Scratch, xlsnap) -> None:
    assert xlsnap("snapshot-create", "-n", "s1", "web").code == 0
    with scratch.disk_b.open("r+b") as handle:              # the corrupt bit (header byte 79)
        handle.seek(79)
        handle.write(b"\x02")
    events = len(json.loads(xlsnap("history", "--json", "web").out))
    run = xlsnap("snapshot-revert", "-n", "s1", "web")
    assert run.code == 2 and f"{scratch.disk_b} is marked corrupt" in run.err, run.err
    assert len(json.loads(xlsnap("history", "--json", "web").out)) == events
    assert tags(scratch.disk_a) == ["s1"]
