"""Checks shared by revert and delete: the snapshot's disks as the ledger says, on disk."""

from __future__ import annotations

import errno
import fcntl
import os
import struct
from typing import Any, NamedTuple

from commands.config.domains import Domain
from commands.drivers.qemu_img import QemuImg, QemuImgError
from commands.errors import OperationFailed, RecordMismatch, UsageError, XlsnapError
from ledger.domain import DomainLedger


def image_error(device: str, path: str, exc: QemuImgError) -> XlsnapError:
    """A disk that qemu-img cannot open: in use (exit 1, try later) or unreadable (exit 2)."""
    if exc.image_locked:
        return OperationFailed(f"disk {device!r} ({path}) is in use by another process "
                               f"(a running domain or a tool holds its lock); nothing changed")
    return UsageError(f"disk {device!r}: cannot read image {path}: {exc}")


class TaggedDisk(NamedTuple):
    """One disk of an internal snapshot, its tag checked to be there exactly once (or,
    for a delete, ``present`` False: gone already, e.g. removed by hand)."""

    device: str
    path: str
    tag: str
    present: bool = True
    corrupt: bool = False           # qcow2's corrupt flag, as read when the disk was checked


#: The bytes QEMU locks in an image (block/file-posix.c): 100 + n while it holds
#: permission n, 200 + n while it does not share it; n = 1 is "write".
QEMU_WRITE_LOCK_BYTES = (101, 201)


def check_writable(device: str, path: str) -> None:
    """Refuse a disk image this process cannot write, or that another process holds
    (QEMU's image lock: a QEMU, ``qemu-io``, a ``qemu-img`` at work), before any change.

    The lock is only looked at (``F_OFD_GETLK``), never taken: the check cannot make
    another process's write fail.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        why = " (immutable?)" if exc.errno == errno.EPERM else ""
        raise UsageError(f"disk {device!r}: cannot write image {path}: {exc.strerror}{why}; "
                         "nothing changed") from None
    try:
        held = any(_locked(fd, byte) for byte in QEMU_WRITE_LOCK_BYTES)
    finally:
        os.close(fd)
    if held:
        raise OperationFailed(f"disk {device!r} ({path}) is in use by another process "
                              f"(a running domain or a tool holds its lock); nothing changed")


def _locked(fd: int, byte: int) -> bool:
    """True when another open file description holds a lock on ``byte`` of ``fd``'s file."""
    probe = struct.pack("hhxxxxqqi4x", fcntl.F_WRLCK, os.SEEK_SET, byte, 1, 0)
    answer = fcntl.fcntl(fd, fcntl.F_OFD_GETLK, probe)
    return struct.unpack("hhxxxxqqi4x", answer)[0] != fcntl.F_UNLCK


def internal_disks(
    domain: Domain, ledger: DomainLedger, name: str, qemu_img: QemuImg, verb: str
) -> list[TaggedDisk]:
    """The disks holding snapshot ``name``; refuses external or incomplete ones, and drift.

    A delete also gets the disks whose tag is gone already (``present`` False), so that
    it can finish a snapshot left incomplete.
    """
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
    qemu_img.read_ahead([d["file"] for d in record["disks"] if d["device"] not in removed])
    for disk in record["disks"]:
        if disk["device"] in removed:
            continue
        path = disk["file"]
        if not os.path.exists(path):
            raise UsageError(f"disk {disk['device']!r} image {path} of snapshot {name!r} is "
                             "missing")
        try:
            info = qemu_img.info(path, force_share=True)
        except QemuImgError as exc:
            raise image_error(disk["device"], path, exc) from None
        found = info.find(disk["name"])
        if not found and verb == "delete":  # gone already: the delete finishes the rest
            disks.append(TaggedDisk(disk["device"], path, disk["name"], present=False))
            continue
        if len(found) != 1:
            raise RecordMismatch(
                f"disk {disk['device']!r} ({path}) has {len(found)} snapshot tags named "
                f"{disk['name']!r} where the ledger expects one; run 'xlsnap check "
                f"{domain.name}'"
            )
        disks.append(TaggedDisk(disk["device"], path, disk["name"], corrupt=info.corrupt))
    return disks
