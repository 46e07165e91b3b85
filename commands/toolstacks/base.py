"""The toolstack protocol and what an adapter returns: a domain plus its live state.

``resolve(name)`` gives a ``Target``: the ``commands.config.domains.Domain`` description the
handlers already use (name, uuid, ledger key, disks) and, for a running domain, a
``Live`` record: its state, the QMP socket that reaches its disks, which disks are
live (QMP device and node names), and for QEMU the command line it was started with.
"""

from __future__ import annotations

import os
import socket
import struct
from pathlib import Path
from collections.abc import Callable
from typing import NamedTuple, Protocol

from commands.config.disk_spec import DiskSpec
from commands.config.domains import DiskEntry, Domain, load_domain, name_uuid, normal_uuid
from commands.drivers.qmp import BlockDevice, Qmp
from commands.errors import ConfigError, UsageError

#: States in which a domain's vCPUs run (xl's ``b`` is a running domain waiting for work).
RUNNING_STATES = ("running", "blocked")


class NotReached(Exception):
    """This toolstack does not reach the domain; the message says why (for ``--verbose``)."""


class LiveDisk(NamedTuple):
    """One disk of a running domain as its device model has it open."""

    vdev: str            # the domain's name for it (xvda; a QEMU device id when no config)
    path: str            # the image on top (the file QEMU writes)
    format: str          # qcow2, raw, ...
    device: str          # QMP device id (transactions, internal snapshots)
    node: str            # QMP node name (jobs, external snapshots)
    writable: bool
    snapshots: tuple[str, ...] = ()
    via: str = ""        # why this node, when the file is open through more than one


class Live(NamedTuple):
    """A running domain: toolstack, state, QMP socket, live disks and how to restart it."""

    toolstack: str
    state: str                     # running, blocked, paused, ...
    qmp_socket: str
    disks: tuple[LiveDisk, ...] = ()
    domid: int | None = None       # xen
    pid: int | None = None         # qemu: the process serving the socket
    argv: tuple[str, ...] = ()     # qemu: its command line, to restart it
    memory_bytes: int = 0
    #: xen: disks QMP cannot snapshot, as ``(image path, why)`` (toolstacks.xen_disks)
    unreachable: tuple[tuple[str, str], ...] = ()
    guest_type: str = ""           # xen: pv, pvh or hvm

    @property
    def was_running(self) -> bool:
        return self.state in RUNNING_STATES


class Target(NamedTuple):
    """A domain resolved by one toolstack; ``live`` is None for a stopped domain."""

    domain: Domain
    toolstack: str
    live: Live | None = None
    reason: str = ""


class Toolstack(Protocol):
    """What an adapter does: find a domain by name, or say why it cannot."""

    name: str

    def resolve(self, name: str) -> Target:
        """The domain ``name``; raises ``NotReached`` when this toolstack does not reach it."""
        ...


class LiveRules:
    """What differs between toolstacks for a running domain; each adapter overrides it.

    Class-level, so a toolstack named in a ledger record has its rules without a driver.
    """

    #: The memory-save step pauses the domain itself (and adds a pause to a paused one).
    save_pauses_domain = False
    #: How a memory image is recorded (``memory_format``); "" when there is none.
    memory_format = ""
    #: A snapshot whose disks are all internal keeps the memory inside the first qcow2.
    vmstate_in_qcow2 = False
    #: A revert saves, destroys and restores the domain (rather than reloading its memory).
    reverts_by_restore = False
    #: External snapshots of a running domain are merged by the device model's block jobs.
    merges_live = False

    @classmethod
    def with_live_disks(cls, target: Target, qmp: Callable[[str], Qmp],
                        require_all: bool = True) -> Target:
        """The target with its live disks filled in, where resolving left them out."""
        return target

    @classmethod
    def check_memory_snapshot(cls, domain: str, live: Live) -> None:
        """Refuse a snapshot with memory this toolstack cannot take of ``live``."""

    @classmethod
    def check_live_external(cls, vdev: str, path: str) -> None:
        """Refuse an external snapshot of a running domain's disk, where unsupported."""

    @classmethod
    def check_memory_path(cls, path: str) -> None:
        """Refuse a memory image path the device model cannot be given."""

    @classmethod
    def restart_argv(cls, live: Live) -> list[str] | None:
        """The command line recorded to start the domain again, if this toolstack has one."""
        return None


def config_domain(config_dir: Path, name: str) -> Domain | None:
    """The domain's xl.cfg description if ``<config_dir>/<name>.cfg`` exists."""
    if not os.path.lexists(config_dir / f"{name}.cfg"):
        return None
    return load_domain(config_dir, name)


def live_domain(name: str, live_uuid: str | None, disks: list[DiskSpec],
                config: Domain | None) -> Domain:
    """A running domain's description: its live disks, keyed like its config file.

    With a config file the ledger key and uuid are the config's (so snapshots taken
    while it was stopped and while it runs share one ledger); a config declaring
    another uuid than the running domain's is refused. Disks the config lists keep
    their place in it (for rewriting it after an external snapshot).
    """
    if config is not None:
        if (config.uuid_declared and live_uuid and not _null_uuid(live_uuid)
                and live_uuid.lower() != config.uuid.lower()):
            raise ConfigError(f"{config.config_path}: declares uuid {config.uuid} but the "
                              f"running domain {name!r} has uuid {live_uuid}")
        by_target = {os.path.realpath(e.spec.target): e for e in config.disks if e.spec.target}
        entries = []
        for spec in disks:
            known = by_target.get(os.path.realpath(spec.target)) if spec.target else None
            if known is None:
                entries.append(DiskEntry(spec, None))
            else:  # named as the config names it, and where the config has it
                entries.append(DiskEntry(_renamed(spec, known.spec.vdev), known.span))
        return Domain(name=name, uuid=config.uuid, uuid_declared=config.uuid_declared,
                      config_path=config.config_path, config=config.config,
                      disks=tuple(entries))
    normal = normal_uuid(live_uuid or "")
    declared = normal is not None and not _null_uuid(normal)
    return Domain(name=name, uuid=normal if normal and declared else name_uuid(name),
                  uuid_declared=declared, config_path=None, config=None,
                  disks=tuple(DiskEntry(spec, None) for spec in disks))


def disk_spec(vdev: str, path: str, fmt: str, writable: bool, cdrom: bool = False) -> DiskSpec:
    return DiskSpec(vdev=vdev, target=path or None, format=fmt or "raw",
                    access="rw" if writable else "ro", devtype="cdrom" if cdrom else "disk")


def live_disks(devices: list[BlockDevice], wanted: list[tuple[str, str]]) -> tuple[LiveDisk, ...]:
    """Match ``(vdev, path)`` pairs with QMP's ``query-block`` drives by file name.

    Each disk is addressed as QMP accepts it (``BlockDevice.qmp_id``) and through exactly
    one node, even when its file is open twice (``one_node``).
    """
    by_file: dict[str, list[BlockDevice]] = {}
    for d in devices:
        if d.filename:
            by_file.setdefault(os.path.realpath(d.filename), []).append(d)
    found = []
    for vdev, path in wanted:
        opened = by_file.get(os.path.realpath(path))
        if not opened:
            raise UsageError(f"disk {vdev!r} ({path}) is not open in the domain's device "
                             "model (QMP query-block does not list it)")
        dev, via = one_node(vdev, opened)
        found.append(LiveDisk(vdev, dev.filename, dev.format, dev.qmp_id, dev.node_name,
                              not dev.read_only, dev.snapshots, via))
    return tuple(found)


def one_node(vdev: str, opened: list[BlockDevice]) -> tuple[BlockDevice, str]:
    """The one node to snapshot a file through, and why, when QEMU has it open.

    An HVM Xen domain has each of its first four disks open twice: the PV (qdisk) node
    ``<vdev>-<format>`` and an emulated IDE drive (``ide0-hd0``, a generated node name).
    Snapshots through both nodes of one file lose the first and corrupt the image
    (reference/xen-in-qemu.md): only one may be used. The qdisk node is chosen: its name
    is libxl's vdev and stays the same across save/restore, where the IDE node's does not,
    and a guest with PV drivers unplugs the emulated disk and writes through qdisk.
    """
    if len(opened) == 1:
        return opened[0], ""
    others = ", ".join(d.qmp_id for d in opened)
    qdisk = [d for d in opened if d.node_name == f"{vdev}-{d.format}"]
    if qdisk:
        return qdisk[0], (f"qdisk node {qdisk[0].node_name}; the file is also open as "
                          f"{', '.join(d.qmp_id for d in opened if d is not qdisk[0])}, "
                          "left alone (one node per file)")
    named = [d for d in opened if d.device]
    if len(named) == 1:
        return named[0], f"backend {named[0].device} (open as {others}; one node per file)"
    raise UsageError(f"disk {vdev!r} ({opened[0].filename}) is open through several "
                     f"nodes ({others}) and none is its qdisk node {vdev}-{opened[0].format}: "
                     "xlsnap snapshots a file through one node only")


def peer_process(socket_path: str) -> tuple[int, int]:
    """``(pid, uid)`` of the process serving a UNIX socket (``SO_PEERCRED``)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(socket_path)
        pid, uid, _gid = struct.unpack("3i", sock.getsockopt(
            socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    return pid, uid


def process_argv(pid: int) -> tuple[str, ...]:
    """A process's command line from ``/proc/<pid>/cmdline`` (empty if unreadable)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ()
    return tuple(part.decode(errors="surrogateescape") for part in raw.split(b"\0")[:-1])


def _null_uuid(value: str) -> bool:
    return value.replace("-", "").strip("0") == ""


def _renamed(spec: DiskSpec, vdev: str) -> DiskSpec:
    return DiskSpec(vdev=vdev, target=spec.target, format=spec.format, access=spec.access,
                    devtype=spec.devtype)
