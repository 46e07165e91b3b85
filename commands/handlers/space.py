"""Space a domain's snapshots hold on disk, for ``xlsnap domains --space``."""

from __future__ import annotations

import json
import os
from typing import Any

from commands.drivers.qemu_img import ImageInfo, QemuImg, QemuImgError
from commands.drivers.process import DriverError


def snapshot_space(records: list[dict[str, Any]], qemu_img: QemuImg) -> dict[str, Any]:
    """``memory_bytes``, ``vm_state_bytes``, ``overlay_bytes``, ``held_bytes`` (None when
    an image could not be read) and ``unreachable`` (those images) of one domain.

    Counted: memory image files (their recorded sizes); the VM state QEMU saved inside the
    qcow2 images (``vm-state-size`` of each tag the ledger knows, read with ``qemu-img info
    -U``, which takes no lock, so a running domain's images are read too); the external
    overlays snapshots created (their allocated size; the newest is the disk the domain
    writes now). Not counted: the clusters an internal snapshot keeps from being freed
    (qemu-img does not report them). An image that cannot be read makes the total unknown.
    """
    memory = sum(int(r.get("memory_size") or 0) for r in records
                 if r.get("memory_format") != "qcow2-vmstate")
    tags_in: dict[str, set[str]] = {}
    overlays: set[str] = set()
    for record in records:
        for disk in record.get("disks", []):
            if disk.get("type") == "external" and disk.get("path"):
                overlays.add(disk["path"])
            elif disk.get("type", "internal") == "internal" and disk.get("file"):
                tags_in.setdefault(disk["file"], set()).add(disk.get("name", ""))
    unreachable: list[str] = []
    vm_state = 0
    for path, names in sorted(tags_in.items()):
        info = _info(qemu_img, path)
        if info is None:
            unreachable.append(path)
            continue
        vm_state += sum(t.vm_state_size for t in info.tags if t.name in names)
    overlay = 0
    for path in sorted(overlays):
        try:
            overlay += os.stat(path).st_blocks * 512
        except OSError:
            unreachable.append(path)
    held = None if unreachable else memory + vm_state + overlay
    return {"memory_bytes": memory, "vm_state_bytes": vm_state, "overlay_bytes": overlay,
            "held_bytes": held, "unreachable": unreachable}


def _info(qemu_img: QemuImg, path: str) -> ImageInfo | None:
    if not os.path.exists(path):
        return None
    try:
        return qemu_img.info(path, force_share=True)
    except (QemuImgError, DriverError):
        return None


def records_of(db: Any, domain_id: str) -> list[dict[str, Any]]:
    """The ledger's records of one domain's snapshots (the projection's copy)."""
    rows = db.execute("SELECT record FROM view_snapshots WHERE domain_id=?",
                      (domain_id,)).fetchall()
    return [json.loads(r[0]) if isinstance(r[0], str) else r[0] for r in rows]
