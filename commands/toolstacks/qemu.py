"""The ``qemu`` adapter: a running QEMU reached by ``<qmp-dir>/<name>.qmp``."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from commands.config.domains import check_domain_name
from commands.drivers.qmp import (
    Qmp,
    QmpBusy,
    QmpError,
    QmpUnavailable,
    UnsafePath,
    check_absolute,
)
from commands.errors import ResourceBusy, UsageError
from commands.toolstacks.base import (
    Live,
    LiveDisk,
    LiveRules,
    NotReached,
    Target,
    config_domain,
    disk_spec,
    live_domain,
    peer_process,
    process_argv,
)

#: QEMU run states reduced to the words of the seed's records.
_STATES = {"running": "running", "paused": "paused", "prelaunch": "paused",
           "postmigrate": "paused", "suspended": "paused", "shutdown": "shutdown",
           "guest-panicked": "crashed", "internal-error": "crashed", "io-error": "crashed"}


def qemu_state(status: str) -> str:
    """A QEMU run state as a domain state (running, paused, ...; else QEMU's own word)."""
    return _STATES.get(status, status)


class QemuToolstack(LiveRules):
    """Domains that are QEMU processes with a QMP socket named after them.

    ``query-status`` gives its state, ``query-block`` its disks (device ids, node names,
    files, formats, internal snapshots), ``query-uuid`` its uuid. The process serving the
    socket (``SO_PEERCRED``) and its command line are kept so that a revert can restart it
    (``-incoming defer`` for a memory image); a process owned by another user is never
    restarted.
    """

    name = "qemu"
    memory_format = "qemu-migration"
    vmstate_in_qcow2 = True
    merges_live = True

    @classmethod
    def check_memory_path(cls, path: str) -> None:
        try:
            check_absolute(path)
        except UnsafePath as exc:
            raise UsageError(str(exc)) from None

    @classmethod
    def restart_argv(cls, live: Live) -> list[str] | None:
        return list(live.argv)

    def __init__(self, qmp_dir: Path | None, config_dir: Path,
                 qmp: Callable[[str], Qmp]) -> None:
        self.qmp_dir = qmp_dir
        self.config_dir = config_dir
        self.qmp = qmp

    def socket_path(self, name: str) -> Path:
        if self.qmp_dir is None:
            raise NotReached("no QMP folder given (--qmp-dir or XLSNAP_QMP_DIR)")
        return self.qmp_dir / f"{name}.qmp"

    def resolve(self, name: str) -> Target:
        check_domain_name(name)
        path = self.socket_path(name)
        if not path.exists():
            raise NotReached(f"no QMP socket {path}")
        qmp = self.qmp(str(path))
        qmp.channel.hold()  # this QEMU's socket is ours alone: one connection per command
        try:
            status = qmp.query_status()
            devices = qmp.query_block()
            uuid = str(qmp.execute("query-uuid").get("UUID", ""))
            memory = int(qmp.execute("query-memory-size-summary").get("base-memory", 0))
        except QmpBusy:  # connected, but no greeting: QEMU serves another client
            raise ResourceBusy(f"QMP socket {path} is busy: another client holds it "
                                "(another xlsnap command on this domain?); try again when "
                                "it is done") from None
        except QmpUnavailable as exc:
            raise NotReached(f"QMP socket {path} does not answer: {exc}") from None
        except QmpError as exc:
            raise UsageError(f"QMP socket {path}: {exc.desc}") from None
        try:
            pid, uid = peer_process(str(path))
        except OSError:
            pid, uid = 0, -1
        argv = process_argv(pid) if pid and uid == os.geteuid() else ()
        specs = [disk_spec(d.qmp_id, d.filename, d.format, not d.read_only)
                 for d in devices]
        domain = live_domain(name, uuid, specs, config_domain(self.config_dir, name))
        disks = tuple(LiveDisk(entry.spec.vdev, d.filename, d.format, d.qmp_id,
                               d.node_name, not d.read_only, d.snapshots)
                      for entry, d in zip(domain.disks, devices, strict=True))
        live = Live("qemu", qemu_state(status.status), str(path), disks, pid=pid or None,
                    argv=argv, memory_bytes=memory)
        return Target(domain, self.name, live,
                      reason=f"QEMU pid {pid or '?'} on {path}, {status.status}")
