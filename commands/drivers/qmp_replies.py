"""QMP's replies as typed values: run state, drives, overlays, migrations."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple


class VmStatus(NamedTuple):
    """``query-status``: QEMU's run state (``running``, ``paused``, ``restore-vm``...)."""

    status: str
    running: bool


class BlockDevice(NamedTuple):
    """One drive with a medium, from ``query-block``."""

    device: str
    node_name: str
    filename: str
    format: str
    read_only: bool
    backing_file: str | None
    snapshots: tuple[str, ...]
    qdev: str = ""
    snapshot_ids: tuple[str, ...] = ()   # the qcow2 ID of each of ``snapshots``, same order

    @property
    def qmp_id(self) -> str:
        """What QMP's block commands accept for it: the backend name, or the node name
        when the backend is anonymous (``"device": ""``; a QOM path in ``qdev`` is not
        accepted: Xen's qdisk disks, ``-device ...,drive=NODE``)."""
        return self.device or self.node_name


class Overlay(NamedTuple):
    """One ``blockdev-snapshot-sync`` action: ``node_name`` gets a new qcow2 on top."""

    node_name: str
    snapshot_file: str
    snapshot_node_name: str


class Migration(NamedTuple):
    """The end of a migration to or from a file."""

    status: str
    path: str
    total_time_ms: int | None
    transferred: int | None


def tag_clashes(devices: Sequence[BlockDevice], tag: str, wanted: Sequence[str]) -> list[str]:
    """Where ``tag`` names one snapshot but is the ID of another, on the ``wanted`` disks.

    Each clash reads ``NODE: ID TAG is NAME``. Commands that find a snapshot by ID
    before name (``snapshot-load``, ``-loadvm``) would pick that other snapshot there.
    """
    clashes = []
    for dev in devices:
        if dev.device not in wanted and dev.node_name not in wanted:
            continue
        for sid, name in zip(dev.snapshot_ids, dev.snapshots):
            if sid == tag and name != tag:
                clashes.append(f"{dev.node_name or dev.device}: ID {sid} is {name!r}")
    return clashes


def block_device(raw: dict[str, Any]) -> BlockDevice:
    ins = raw["inserted"]
    image = ins.get("image") or {}
    return BlockDevice(
        device=str(raw.get("device", "")), node_name=str(ins.get("node-name", "")),
        filename=str(ins.get("file", "")), format=str(ins.get("drv", "")),
        read_only=bool(ins.get("ro", False)),
        backing_file=image.get("full-backing-filename") or image.get("backing-filename"),
        snapshots=tuple(str(s["name"]) for s in image.get("snapshots", [])),
        qdev=str(raw.get("qdev", "")),
        snapshot_ids=tuple(str(s.get("id", "")) for s in image.get("snapshots", [])),
    )
