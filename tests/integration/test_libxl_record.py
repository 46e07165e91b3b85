"""The snapshotdata-*.libxl-json files hold the 2014 series' libxl_domain_snapshot record."""

from __future__ import annotations

import json
from pathlib import Path

from commands.state.snapshot_metadata import DISK_FIELDS, SERIES_FIELDS, render_libxl_json
from tests.conftest import Scratch, read_pattern, tags, write_pattern


def metadata(scratch: Scratch, name: str) -> dict:
    return json.loads((scratch.domain_dir / f"snapshotdata-{name}.libxl-json").read_text())


def test_mixed_snapshot_file_has_the_series_fields_types_and_meanings(scratch: Scratch,
                                                                      xlsnap) -> None:
    write_pattern(scratch.disk_b, 0x5B)
    overlay = scratch.images / "b-over.qcow2"
    cfg = scratch.root / "mixed.cfg"
    cfg.write_text(f"name = 1397207577\ndescription = 'mixed'\n"
                   f"disk = [ 'xvda,type=internal', 'xvdb={overlay},type=external' ]\n")
    run = xlsnap("snapshot-create", "web", str(cfg))
    assert run.code == 0, run.err
    meta = metadata(scratch, "1397207577")
    assert list(meta) == [*SERIES_FIELDS, "xlsnap"]
    assert meta["name"] == "1397207577" and meta["description"] == "mixed"
    assert isinstance(meta["creation_time"], int) and meta["creation_time"] > 0
    assert meta["memory"] == "" and meta["xlsnap"]["memory_saved"] is False
    assert meta["type"] == "external"  # one disk is external: the config was rewritten
    assert [meta[f] for f in ("running", "blocked", "paused", "shutdown", "dying")] == [
        False, False, False, True, False]
    assert [{k: d[k] for k in DISK_FIELDS} for d in meta["disks"]] == [
        {"device": "xvda", "name": "1397207577", "file": "", "format": "qcow2",
         "path": str(scratch.disk_a), "type": "internal"},
        {"device": "xvdb", "name": "1397207577", "file": str(overlay), "format": "qcow2",
         "path": str(scratch.disk_b), "type": "external"},
    ]
    assert meta["xlsnap"]["domain"]["name"] == "web"
    # what the record says is what is on disk
    assert tags(scratch.disk_a) == ["1397207577"] and read_pattern(overlay, 0x5B)


def test_projections_metadata_rewrites_files_of_the_old_layout(scratch: Scratch,
                                                               xlsnap) -> None:
    write_pattern(scratch.disk_a, 0x3C)
    assert xlsnap("snapshot-create", "-n", "s1", "web").code == 0
    path: Path = scratch.domain_dir / "snapshotdata-s1.libxl-json"
    new = path.read_text()
    listed = json.loads(xlsnap("snapshot-list", "-l", "web", "s1").out)
    path.write_text(render_libxl_json(listed))  # what earlier xlsnap versions wrote
    assert json.loads(path.read_text())["memory"] == "no"
    run = xlsnap("projections", "metadata", "web")
    assert run.code == 0, run.err
    assert path.read_text() == new
    assert json.loads(new)["memory"] == ""
    assert tags(scratch.disk_a) == ["s1"] and read_pattern(scratch.disk_a, 0x3C)
