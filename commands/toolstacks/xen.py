"""The ``xen`` adapter: ``xl list -l`` for the domain, libxl's QMP socket for its disks."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from commands.config.domains import check_domain_name
from commands.drivers.process import ToolMissing
from commands.drivers.qmp import Qmp, QmpError
from commands.drivers.xl import (
    DomainNotFound,
    NoHypervisor,
    NotPrivileged,
    Xl,
    XlError,
    XlOutputError,
)
from commands.errors import UsageError
from commands.toolstacks.base import (
    Live,
    LiveRules,
    NotReached,
    Target,
    config_domain,
    disk_spec,
    live_disks,
    live_domain,
)
from commands.toolstacks.xen_disks import classify


class XenToolstack(LiveRules):
    """Domains that ``xl`` knows.

    A running Xen domain's qcow2 images are locked by its device model (QEMU), so its
    live disk snapshots go through ``<xen-qmp-dir>/qmp-libxl-<domid>``; the disks
    themselves come from ``xl list -l`` (``config.disks[]``: pdev_path, vdev, format,
    readwrite). SXP output (``output_format="sxp"`` in xl.conf) is refused, and an ``xl``
    that finds no hypervisor is reported in one line.
    """

    name = "xen"
    save_pauses_domain = True   # xl save -p pauses the domain itself
    memory_format = "xl-save"
    reverts_by_restore = True

    @classmethod
    def with_live_disks(cls, target: Target, qmp: Callable[[str], Qmp],
                        require_all: bool = True) -> Target:
        return with_qmp_disks(target, qmp, require_all)

    @classmethod
    def check_memory_snapshot(cls, domain: str, live: Live) -> None:
        if live.state == "paused" and live.guest_type in ("pv", "pvh"):
            raise UsageError(f"Xen domain {domain!r} is a paused {live.guest_type.upper()} "
                             "guest: it cannot acknowledge xl save's suspend request (libxl "
                             f"gives up after 60 s); unpause it first ('xl unpause {domain}'), "
                             "or take a disk-only snapshot (--disk-only)")

    @classmethod
    def check_live_external(cls, vdev: str, path: str) -> None:
        raise UsageError(f"external snapshots of a running Xen domain are not supported: libxl "
                         f"would keep using {path} after a restart (disk {vdev!r}); take "
                         "an internal one, or stop the domain first")

    def __init__(self, xl: Xl, config_dir: Path, qmp: Callable[[str], Qmp]) -> None:
        self.xl = xl
        self.config_dir = config_dir
        self.qmp = qmp

    def resolve(self, name: str) -> Target:
        check_domain_name(name)
        try:
            found = self.xl.list_long(name)
            rows = self.xl.list_short(name)
        except ToolMissing:
            raise NotReached(f"{self.xl.binary} is not installed") from None
        except NotPrivileged as exc:  # a running domain may be there: never fall back
            raise UsageError(str(exc)) from None
        except NoHypervisor as exc:
            raise NotReached(str(exc)) from None
        except DomainNotFound:
            raise NotReached(f"xl knows no domain {name!r}") from None
        except XlOutputError as exc:
            raise UsageError(str(exc)) from None
        except XlError as exc:
            raise UsageError(f"xl list {name}: {exc}") from None
        if len(found) != 1 or len(rows) != 1:
            raise UsageError(f"xl list -l {name} printed {len(found)} domains")
        dom, row = found[0], rows[0]
        state = row.state.value
        if state in ("shutdown", "dying"):
            raise UsageError(f"Xen domain {name!r} (id {dom.domid}) is {state} but not "
                             f"destroyed; run 'xl destroy {name}' first")
        specs = [disk_spec(d.vdev or "", d.pdev_path or "", d.format, d.readwrite, d.is_cdrom)
                 for d in dom.disks if d.vdev]
        domain = live_domain(name, dom.uuid, specs, config_domain(self.config_dir, name))
        memkb = int((dom.config.get("b_info") or {}).get("target_memkb", 0) or 0)
        paths = {d.vdev: d.pdev_path or "" for d in dom.disks}
        unreachable = tuple((paths[v.vdev], f"disk {v.vdev!r} ({paths[v.vdev]}): {v.refusal}")
                            for v in classify(dom) if v.refusal)
        live = Live("xen", state, self.xl.qmp_socket_path(dom.domid), (), domid=dom.domid,
                    memory_bytes=memkb * 1024, unreachable=unreachable,
                    guest_type=str(dom.type or "hvm"))
        return Target(domain, self.name, live,
                      reason=f"Xen domain id {dom.domid}, {state}, QMP {live.qmp_socket}")


def with_qmp_disks(target: Target, qmp: Callable[[str], Qmp],
                   require_all: bool = True) -> Target:
    """The Xen target with its live disks: ``query-block`` on the device model's socket.

    Disks that libxl does not serve through dom0's QEMU (``toolstacks.xen_disks``) are
    left out; with ``require_all`` a writable one is refused, naming it and why.
    """
    live = target.live
    assert live is not None
    if live.disks or live.toolstack != "xen":
        return target
    unreachable = {os.path.realpath(path): why for path, why in live.unreachable}
    refused = [why for e in target.domain.disks if e.spec.target and e.spec.devtype == "disk"
               and e.spec.access != "ro"
               for why in [unreachable.get(os.path.realpath(e.spec.target))] if why]
    if refused and require_all:
        raise UsageError(f"Xen domain {target.domain.name!r} cannot be snapshotted while it "
                         f"runs: {'; '.join(refused)}")
    kept = tuple(e for e in target.domain.disks
                 if not (e.spec.target and os.path.realpath(e.spec.target) in unreachable))
    domain = target.domain._replace(disks=kept)  # QMP's disks only, in the domain's order
    wanted = [(e.spec.vdev, e.spec.target) for e in kept
              if e.spec.target and e.spec.devtype == "disk"]
    if not wanted:
        return Target(domain, target.toolstack, live, target.reason)
    try:
        devices = qmp(live.qmp_socket).query_block()
    except QmpError as exc:
        raise UsageError(f"Xen domain {target.domain.name!r}: its device model's QMP socket "
                         f"{live.qmp_socket} does not answer: {exc.desc}") from None
    disks = live_disks(devices, wanted)
    return Target(domain, target.toolstack, live._replace(disks=disks), target.reason)