"""Tests for the snapshot config file (commands.config.snapshot_cfg)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from commands.config.snapshot_cfg import (
    DiskRequest,
    SnapshotConfig,
    load_snapshot_cfg,
    parse_snapshot_cfg,
)
from commands.config.xlcfg import parse_xl_cfg
from commands.errors import ConfigError

SEED_INTERNAL = """\
name = "internal_snapshot_after_installation"
description="a snapshot after OS installation. internal snapshot example"
creationtime="1397207580"
type="internal"
"""

SEED_EXTERNAL = """\
name = "1397207577"
description="a snapshot after OS installation. external snapshot example"
creationtime="1397207577"
memory="yes"
disk=[ 'hda=/var/lib/xen/snapshots/u/disk_hda.qcow2,type=qcow2', 'hdc=/var/lib/xen/snapshots/u/disk_hdc.qcow2,type=qcow2']
"""


def parse(text: str, path: str = "/tmp/snap.cfg") -> SnapshotConfig:
    return parse_snapshot_cfg(parse_xl_cfg(text, path))


def error(text: str, path: str = "/tmp/snap.cfg") -> str:
    with pytest.raises(ConfigError) as info:
        parse(text, path)
    message = str(info.value)
    assert "\n" not in message
    return message


# -- the seed's examples ---------------------------------------------------------------

def test_seed_internal_example() -> None:
    assert parse(SEED_INTERNAL) == SnapshotConfig(
        name="internal_snapshot_after_installation",
        description="a snapshot after OS installation. internal snapshot example",
        creation_time=1397207580,
        type="internal",
        memory=None,
        disks=(),
    )


def test_seed_external_example() -> None:
    cfg = parse(SEED_EXTERNAL)
    assert cfg.name == "1397207577"
    assert cfg.creation_time == 1397207577
    assert cfg.memory == "yes"
    assert cfg.type is None
    assert cfg.disks == (
        DiskRequest("hda", "external", "/var/lib/xen/snapshots/u/disk_hda.qcow2"),
        DiskRequest("hdc", "external", "/var/lib/xen/snapshots/u/disk_hdc.qcow2"),
    )


def test_empty_file_gives_all_defaults() -> None:
    assert parse("") == SnapshotConfig(None, "", None, None, None, ())


# -- keys -----------------------------------------------------------------------------

def test_creationtime_may_be_a_number() -> None:
    assert parse("creationtime = 1397207580\n").creation_time == 1397207580


@pytest.mark.parametrize("value", ['"yesterday"', '""', '"12 "', '"-5"', '"1.5"', '"1e9"', "[1]",
                                   '"١٢"', "99999999999999999999",
                                   '"' + "9" * 5000 + '"'])
def test_malformed_creationtime_names_the_line(value: str) -> None:
    text = f"name = 'x'\ncreationtime = {value}\n"
    message = error(text)
    assert message.startswith("/tmp/snap.cfg:2: creationtime must be whole seconds since the epoch: ")


@pytest.mark.parametrize("kind", ["internal", "external"])
def test_type(kind: str) -> None:
    assert parse(f"type = '{kind}'").type == kind


def test_bad_type_names_the_line() -> None:
    assert error("\ntype = 'full'\n") == (
        "/tmp/snap.cfg:2: type must be 'internal' or 'external', not 'full': \"type = 'full'\""
    )


@pytest.mark.parametrize("memory", ["yes", "no", "/var/lib/xen/snapshots/u/mem.save"])
def test_memory_values(memory: str) -> None:
    assert parse(f"memory = '{memory}'").memory == memory


@pytest.mark.parametrize("memory", ["maybe", "mem.save", "", "rel/x.save"])
def test_bad_memory_names_the_line(memory: str) -> None:
    message = error(f"\n\nmemory = '{memory}'\n")
    assert message.startswith("/tmp/snap.cfg:3: memory must be 'yes', 'no' or an absolute path")


def test_name_may_be_a_number_as_in_the_seed() -> None:
    assert parse("name = 1397207577\n").name == "1397207577"


@pytest.mark.parametrize("value", ["1397207577", '"1397207577"', "0x5347b219", '" 1397207577"'])
def test_creationtime_is_read_as_xl_reads_numbers(value: str) -> None:
    assert parse(f"creationtime = {value}\n").creation_time == 1397207577


def test_name_must_be_a_single_value() -> None:
    assert error("name = [1]\n").startswith(
        "/tmp/snap.cfg:1: 'name' is a list but must be a single value")


def test_description_must_be_a_string() -> None:
    assert error("description = ['a']\n").startswith(
        "/tmp/snap.cfg:1: 'description' is a list but must be a single value")


def test_unknown_key_is_named_with_its_line() -> None:
    assert error("name = 'x'\n\nmemroy = 'yes'\n") == (
        "/tmp/snap.cfg:3: unknown key 'memroy' (expected one of name, description, "
        "creationtime, type, memory, disk): \"memroy = 'yes'\""
    )


def test_names_are_not_validated_here() -> None:
    assert parse("name = '../../etc'").name == "../../etc"


# -- disks ----------------------------------------------------------------------------

def test_disk_entry_forms() -> None:
    cfg = parse("""\
type = "internal"
disk = [
    'hda=/var/lib/xen/snapshots/u/disk_hda.qcow2,type=qcow2',  # external overlay
    'hdb,type=internal',
    'hdc',
    'xvdd, type=external',
    ' xvde = /snap/e.qcow2 , format=qcow2 , type=external ',
]
""")
    assert cfg.disks == (
        DiskRequest("hda", "external", "/var/lib/xen/snapshots/u/disk_hda.qcow2"),
        DiskRequest("hdb", "internal", None),
        DiskRequest("hdc", None, None),
        DiskRequest("xvdd", "external", None),
        DiskRequest("xvde", "external", "/snap/e.qcow2"),
    )
    assert all(d.overlay_format == "qcow2" for d in cfg.disks)


def test_single_disk_string_is_refused_as_xl_reads_no_item_from_it() -> None:
    assert "'disk' is a single string, not a list" in error("disk = 'hda'\n")


def test_disk_list_built_with_plus_equals() -> None:
    cfg = parse("disk = ['hda']\ndisk += ['hdb,type=internal']\n")
    assert [d.vdev for d in cfg.disks] == ["hda", "hdb"]


DISK_ERRORS = [
    ("hdb=/snap/b.qcow2,type=internal", "an internal snapshot takes no overlay path"),
    ("hdb=snap/b.qcow2", "the overlay must be an absolute path"),
    ("hdb=", "the overlay must be an absolute path"),
    ("hdb,type=raw", "unsupported overlay format 'raw' (only qcow2)"),
    ("hdb=/b.vhd,format=vhd", "unsupported overlay format 'vhd' (only qcow2)"),
    ("hdb,cache=none", "unknown option 'cache=none'"),
    ("hdb,type=", "unknown option 'type='"),
    ("hdb,", "unknown option ''"),
    ("hdb,type=internal,type=external", "type given twice"),
    ("", "expected VDEV[=OVERLAY] first"),
    ("/dev/xvdb", "expected VDEV[=OVERLAY] first"),
    ("=/snap/b.qcow2", "expected VDEV[=OVERLAY] first"),
]


@pytest.mark.parametrize(("entry", "why"), DISK_ERRORS)
def test_bad_disk_entry_names_its_line_and_why(entry: str, why: str) -> None:
    text = f"name = 'x'\ndisk = [\n    'hda',\n    '{entry}',\n]\n"
    message = error(text)
    assert message.startswith(f"/tmp/snap.cfg:4: bad disk entry {entry!r}: {why}")
    assert message.endswith(f": \"    '{entry}',\"")


def test_duplicate_vdev_names_the_second_line() -> None:
    text = "disk = [\n  'hda',\n  'hda,type=internal',\n]\n"
    assert error(text) == "/tmp/snap.cfg:3: disk 'hda' is listed twice: \"  'hda,type=internal',\""


def test_disk_items_must_be_strings() -> None:
    assert error("disk = ['hda', ['hdb']]\n").startswith(
        "/tmp/snap.cfg:1: item 2 of 'disk' is a list")


# -- files ----------------------------------------------------------------------------

def test_load_snapshot_cfg_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "snapshot_external"
    path.write_text(SEED_EXTERNAL, encoding="utf-8")
    assert load_snapshot_cfg(path) == parse(SEED_EXTERNAL)


def test_load_snapshot_cfg_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "snap.cfg"
    path.write_text("name = 'x'\ntype = 'sideways'\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="^" + re.escape(f"{path}:2: type must be")):
        load_snapshot_cfg(str(path))


def test_load_snapshot_cfg_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "none.cfg"
    with pytest.raises(ConfigError, match="^" + re.escape(f"config file not found: {path}") + "$"):
        load_snapshot_cfg(path)


def test_load_snapshot_cfg_never_evaluates_python(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.cfg"
    path.write_text(f"name = __import__('os').system('touch {marker}')\n", encoding="utf-8")
    with pytest.raises(ConfigError):
        load_snapshot_cfg(path)
    assert not marker.exists()
