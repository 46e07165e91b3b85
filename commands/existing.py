"""Checks shared by revert and delete: the snapshot's disks as the ledger says, on disk."""

from __future__ import annotations

import os
from typing import Any, NamedTuple

from commands.domains import Domain
from commands.drivers.qemu_img import QemuImg, QemuImgError
from commands.errors import LedgerBlocked, OperationFailed, UsageError, XlsnapError
from ledger.domain import DomainLedger


def image_error(device: str, path: str, exc: QemuImgError) -> XlsnapError:
    """A disk that qemu-img cannot open: in use (exit 1, try later) or unreadable (exit 2)."""
    if exc.image_locked:
        return OperationFailed(f"disk {device!r} ({path}) is in use by another process "
                               f"(a running domain or a tool holds its lock); nothing changed")
    return UsageError(f"disk {device!r}: cannot read image {path}: {exc}")


class TaggedDisk(NamedTuple):
    """One disk of an internal snapshot, its tag checked to be there exactly once."""

    device: str
    path: str
    tag: str


def internal_disks(
    domain: Domain, ledger: DomainLedger, name: str, qemu_img: QemuImg, verb: str
) -> list[TaggedDisk]:
    """The disks holding snapshot ``name``; refuses external or incomplete ones, and drift."""
    entry = ledger.entry(name)
    record: dict[str, Any] = entry["record"]
    if record.get("type") != "internal":
        raise UsageError(
            f"snapshot {name!r} is {record.get('type')}: {verb} of external snapshots is "
            "not supported yet"
        )
    removed = set(entry.get("removed_devices", []))
    if removed and verb == "revert":
        raise UsageError(f"snapshot {name!r} is incomplete (removed from "
                         f"{', '.join(sorted(removed))}); it can only be deleted")
    disks: list[TaggedDisk] = []
    for disk in record["disks"]:
        if disk["device"] in removed:
            continue
        path = disk["file"]
        if not os.path.exists(path):
            raise UsageError(f"disk {disk['device']!r} image {path} of snapshot {name!r} is "
                             "missing")
        try:
            found = qemu_img.info(path, force_share=True).find(disk["name"])
        except QemuImgError as exc:
            raise image_error(disk["device"], path, exc) from None
        if len(found) != 1:
            raise LedgerBlocked(
                f"disk {disk['device']!r} ({path}) has {len(found)} snapshot tags named "
                f"{disk['name']!r} where the ledger expects one; run 'xlsnap check "
                f"{domain.name}'"
            )
        disks.append(TaggedDisk(disk["device"], path, disk["name"]))
    return disks
