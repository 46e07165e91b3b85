"""Which disks a snapshot covers, and where its overlays and memory image may go."""

from __future__ import annotations

import os
from pathlib import Path

from commands.config.disk_spec import DiskSpec
from commands.config.domains import DiskEntry, Domain
from commands.config.snapshot_cfg import DiskRequest, SnapshotConfig
from commands.drivers.qemu_img import QemuImg, QemuImgError
from commands.errors import UsageError


def chosen_disks(
    domain: Domain, snapcfg: SnapshotConfig | None
) -> list[tuple[int, DiskEntry, DiskRequest | None, str]]:
    """The disks a snapshot covers, as ``(index, entry, request, kind)``.

    Every writable disk, unless the config lists disks and sets no type (then just
    those); kind is the disk's own ``type=``, external when it names an overlay,
    else the config's type, else internal.
    """
    check_distinct_images(domain)
    default_kind = snapcfg.type if snapcfg and snapcfg.type else "internal"
    requests = {d.vdev: d for d in snapcfg.disks} if snapcfg else {}
    listed_only = bool(requests) and snapcfg is not None and snapcfg.type is None
    for vdev in requests:
        domain.disk(vdev)
    chosen: list[tuple[int, DiskEntry, DiskRequest | None, str]] = []
    for index, entry in enumerate(domain.disks):
        spec = entry.spec
        request = requests.get(spec.vdev)
        if not spec.writable or not spec.target:
            if request is not None:
                raise UsageError(f"disk {spec.vdev!r} of domain {domain.name!r} is read-only "
                                 "or empty and cannot be snapshotted")
            continue
        if listed_only and request is None:
            continue  # a config that lists disks and sets no type snapshots just those
        kind = (request.kind if request and request.kind else None) or (
            "external" if request and request.overlay else default_kind)
        chosen.append((index, entry, request, kind))
    if not chosen:
        raise UsageError(f"domain {domain.name!r} has no writable disk to snapshot")
    return chosen


def check_distinct_images(domain: Domain) -> None:
    """Refuse a domain two of whose disks are one image (its path resolved: ``..``, links),
    unless both are read-only: a snapshot would tag it twice."""
    seen: dict[str, DiskSpec] = {}
    for entry in domain.disks:
        spec = entry.spec
        if not spec.target or not os.path.isabs(spec.target):
            continue
        real = os.path.realpath(spec.target)
        other = seen.get(real)
        if other is not None and (other.writable or spec.writable):
            raise UsageError(f"disks {other.vdev!r} and {spec.vdev!r} of domain {domain.name!r} "
                             f"are one image, {real}; a domain's disks must be distinct")
        seen.setdefault(real, spec)


def check_outside_state(snapcfg: SnapshotConfig | None, home: Path, ledger: str) -> None:
    """Refuse a snapshot config whose memory image or overlay would be in xlsnap's home
    (its own or another domain's folder) or be the ledger (links and ``..`` resolved)."""
    if snapcfg is None:
        return
    named = [("memory image", snapcfg.memory)] if snapcfg.memory not in (None, "yes", "no") \
        else []
    named += [(f"overlay of disk {d.vdev!r}", d.overlay) for d in snapcfg.disks if d.overlay]
    state = Path(os.path.realpath(home))
    ledger_real = os.path.realpath(ledger)
    for what, path in named:
        assert path is not None
        real = Path(os.path.realpath(os.path.dirname(path))) / os.path.basename(path)
        if real == state or state in real.parents:
            raise UsageError(f"{what} {path} is inside xlsnap's home {home}; choose a path "
                             "outside it (the home holds the ledger and every domain's files)")
        if str(real).startswith(ledger_real):
            raise UsageError(f"{what} {path} would overwrite the ledger {ledger}")


def check_distinct_overlays(overlays: list[str | None]) -> None:
    """Refuse a plan in which two disks would get the same overlay file."""
    named = [os.path.join(os.path.realpath(os.path.dirname(o)), os.path.basename(o))
             for o in overlays if o]
    if len(set(named)) != len(named):
        raise UsageError("two disks would share one overlay file")


def choose_overlay(base: str, name: str, vdev: str, requested: str | None,
                   qemu_img: QemuImg | None = None) -> str:
    """The overlay path for a disk, checked: absolute, not there yet, in an existing folder.

    The requested one, else ``<stem>.<name>.qcow2`` beside ``base`` (the image on top),
    where ``stem`` is that of the image at the bottom of its backing chain: so the names
    of a chain of overlays do not grow (``a.e1``, ``a.e2``, not ``a.e1.e2``).
    """
    if not requested:
        try:
            bottom = (qemu_img or QemuImg()).chain_bottom(base)
        except (QemuImgError, ValueError):
            bottom = base
        requested = str(Path(base).with_name(f"{Path(bottom).stem}.{name}.qcow2"))
    overlay = requested
    if not os.path.isabs(overlay):
        raise UsageError(f"overlay {overlay!r} for disk {vdev!r} is not an absolute path")
    if os.path.lexists(overlay):
        raise UsageError(f"overlay {overlay} for disk {vdev!r} exists already")
    if not os.path.isdir(os.path.dirname(overlay)):
        raise UsageError(f"folder of overlay {overlay} for disk {vdev!r} does not exist")
    return overlay
