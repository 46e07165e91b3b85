"""libxl_record: xlsnap's snapshot record as the series' libxl_domain_snapshot."""

from __future__ import annotations

from commands.state.snapshot_metadata import libxl_record

LIVE = {
    "name": "s1", "description": "d", "creation_time": 1397207577,
    "claimed_creation_time": None, "memory": "yes", "type": "external",
    "state": "paused", "running": False, "blocked": False, "paused": True,
    "shutdown": False, "dying": False,
    "disks": [{"device": "xvda", "name": "s1", "file": "/img/a.raw", "qmp_device": "",
               "qmp_node": "xvda-qcow2", "format": "raw", "path": "/img/a.s1.qcow2",
               "type": "external"}],
    "domain": {"name": "web", "uuid": "u"}, "toolstack": "xen",
    "memory_format": "xl-save", "memory_file": "/var/lib/xlsnap/u/s1.save",
    "memory_sha256": "ab", "memory_size": 3,
}


def test_memory_is_the_path_of_the_saved_image() -> None:
    out = libxl_record(LIVE)
    assert out["memory"] == "/var/lib/xlsnap/u/s1.save"
    assert out["paused"] is True and out["running"] is False
    assert out["xlsnap"]["memory_saved"] is True and "memory_file" not in out["xlsnap"]
    assert out["xlsnap"]["memory_sha256"] == "ab" and out["xlsnap"]["state"] == "paused"


def test_external_disk_file_is_the_new_overlay_and_path_the_image() -> None:
    (disk,) = libxl_record(LIVE)["disks"]
    assert {k: disk[k] for k in ("device", "name", "file", "format", "path", "type")} == {
        "device": "xvda", "name": "s1", "file": "/img/a.s1.qcow2", "format": "qcow2",
        "path": "/img/a.raw", "type": "external"}
    assert disk["xlsnap"] == {"qmp_device": "", "qmp_node": "xvda-qcow2", "image_format": "raw"}


def test_memory_kept_inside_a_qcow2_disk_has_no_file() -> None:
    record = {**LIVE, "memory_format": "qcow2-vmstate", "memory_file": None}
    out = libxl_record(record)
    assert out["memory"] == "" and out["xlsnap"]["memory_saved"] is True


def test_a_disk_only_snapshot_has_an_empty_memory() -> None:
    out = libxl_record({**LIVE, "memory": "no", "memory_file": None})
    assert out["memory"] == "" and out["xlsnap"]["memory_saved"] is False
