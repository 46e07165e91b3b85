"""The per-snapshot ``snapshotdata-<name>.libxl-json`` files, derived from the ledger.

Their format is that of the 2014 libxl snapshot series (``libxl_record`` says how).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from commands.drivers.process import ProcessResult
from commands.state.atomic_files import atomic_write, remove_file
from commands.state.private_folders import UnsafeFolder, private_dir

STATE_FLAGS = ("running", "blocked", "paused", "shutdown", "dying")
DISK_FIELDS = ("device", "name", "file", "format", "path", "type")
SERIES_FIELDS = ("name", "description", "creation_time", "memory", "type", *STATE_FLAGS,
                 "disks")
# keys of xlsnap's record that the series' fields carry under their own names
_MAPPED = frozenset(SERIES_FIELDS) | {"memory_file"}


def _disk(disk: dict[str, Any]) -> dict[str, Any]:
    """One disk of xlsnap's record as the series' ``libxl_disk_snapshot``.

    xlsnap's record keeps an external disk's image in ``file`` and its overlay in
    ``path``, and the image's format; the series has them the other way round and
    the format of the snapshot, i.e. of the qcow2 overlay.
    """
    external = disk.get("type") == "external"
    image = disk.get("file") if external else disk.get("path") or disk.get("file")
    out: dict[str, Any] = {
        "device": disk.get("device") or "",
        "name": disk.get("name") or "",
        "file": (disk.get("path") or "") if external else "",
        "format": "qcow2" if external else disk.get("format") or "qcow2",
        "path": image or "",
        "type": "external" if external else "internal",
    }
    extra = {k: v for k, v in disk.items() if k not in DISK_FIELDS}
    if external:
        extra["image_format"] = disk.get("format")
    if extra:
        out["xlsnap"] = extra
    return out


def libxl_record(record: dict[str, Any]) -> dict[str, Any]:
    """The series' ``libxl_domain_snapshot`` of xlsnap's snapshot record.

    A file holds the snapshot record of the 2014 libxl snapshot series (Bamvor Jian Zhang,
    Chunyan Liu; the seed design), whose ``libxl_types.idl`` defines::

        libxl_snapshot_type = Enumeration("snapshot_type",
            [(0, "ANY"), (1, "INTERNAL"), (2, "EXTERNAL")])
        libxl_disk_snapshot = Struct("disk_snapshot", [("device", string),
            ("name", string), ("file", string), ("format", libxl_disk_format),
            ("path", string), ("type", libxl_snapshot_type)])
        libxl_domain_snapshot = Struct("domain_snapshot", [("name", string),
            ("description", string), ("creation_time", uint64), ("memory", string),
            ("type", libxl_snapshot_type), ("running", bool), ("blocked", bool),
            ("paused", bool), ("shutdown", bool), ("dying", bool),
            ("disks", Array(libxl_disk_snapshot, "num_disks"))])

    written as libxl's generated ``libxl_domain_snapshot_to_json`` writes it: enums as
    their lower-case names, ``memory`` the path of the saved memory image ("" when none),
    a disk's ``name`` its snapshot name, ``file`` the new overlay of an external disk
    snapshot ("" for an internal one), ``format`` that of the snapshot (an overlay is
    qcow2), ``path`` the disk's image. A snapshot whose disks differ in type has the
    ``type`` "external" when any disk is external (the domain config was rewritten), and
    each disk says its own type. What xlsnap knows beyond that stays under ``"xlsnap"``
    keys. The ledger keeps xlsnap's own record (``libxl_record`` maps it), so
    ``xlsnap projections metadata`` rewrites files written by older versions.
    """
    disks = [_disk(d) for d in record.get("disks") or []]
    memory_saved = record.get("memory") == "yes"
    out: dict[str, Any] = {
        "name": record.get("name") or "",
        "description": record.get("description") or "",
        "creation_time": max(0, int(record.get("creation_time") or 0)),
        "memory": (record.get("memory_file") or "") if memory_saved else "",
        "type": "external" if any(d["type"] == "external" for d in disks) else "internal",
        **{flag: bool(record.get(flag)) for flag in STATE_FLAGS},
        "disks": disks,
    }
    extra = {k: v for k, v in record.items() if k not in _MAPPED}
    extra["memory_saved"] = memory_saved
    out["xlsnap"] = extra
    return out


def metadata_path(domain_dir: Path, name: str) -> Path:
    return domain_dir / f"snapshotdata-{name}.libxl-json"


def render_libxl_json(record: dict[str, Any]) -> str:
    """A snapshot record as libxl prints JSON: 4-space indent, keys in record order."""
    return json.dumps(record, indent=4) + "\n"


def write_metadata(domain_dir: Path, name: str, record: dict[str, Any]) -> ProcessResult:
    """Write one snapshot's metadata file (``libxl_record`` of xlsnap's record) atomically."""
    try:
        private_dir(domain_dir)
    except UnsafeFolder as exc:  # inside an operation: a failed step, undone like others
        raise OSError(str(exc)) from None
    path = metadata_path(domain_dir, name)
    atomic_write(path, render_libxl_json(libxl_record(record)).encode(), mode=0o644)
    return ProcessResult(["write", str(path)], 0)


def remove_metadata(domain_dir: Path, name: str) -> ProcessResult:
    """Remove one snapshot's metadata file if present (as a step's result)."""
    path = metadata_path(domain_dir, name)
    removed = remove_file(path)
    return ProcessResult(["unlink", str(path)], 0, detail={"removed": removed})
