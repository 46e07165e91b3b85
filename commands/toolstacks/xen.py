"""The ``xen`` adapter: ``xl list -l`` for the domain, libxl's QMP socket for its disks.

A running Xen domain's qcow2 images are locked by its device model (QEMU), so its
live disk snapshots go through ``<xen-qmp-dir>/qmp-libxl-<domid>``; the disks
themselves come from ``xl list -l`` (``config.disks[]``: pdev_path, vdev, format,
readwrite). SXP output (``output_format="sxp"`` in xl.conf) is refused, and an ``xl``
that finds no hypervisor is reported in one line.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from commands.domains import check_domain_name
from commands.drivers.process import ToolMissing
from commands.drivers.qmp import Qmp, QmpError
from commands.drivers.xl import DomainNotFound, NoHypervisor, Xl, XlError, XlOutputError
from commands.errors import UsageError
from commands.toolstacks.base import (
    Live,
    NotReached,
    Target,
    config_domain,
    disk_spec,
    live_disks,
    live_domain,
)


class XenToolstack:
    """Domains that ``xl`` knows."""

    name = "xen"

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
        live = Live("xen", state, self.xl.qmp_socket_path(dom.domid), (), domid=dom.domid,
                    memory_bytes=memkb * 1024)
        return Target(domain, self.name, live,
                      reason=f"Xen domain id {dom.domid}, {state}, QMP {live.qmp_socket}")


def with_qmp_disks(target: Target, qmp: Callable[[str], Qmp]) -> Target:
    """The Xen target with its live disks: ``query-block`` on the device model's socket."""
    live = target.live
    assert live is not None
    if live.disks or live.toolstack != "xen":
        return target
    wanted = [(e.spec.vdev, e.spec.target) for e in target.domain.disks
              if e.spec.target and e.spec.devtype == "disk"]
    try:
        devices = qmp(live.qmp_socket).query_block()
    except QmpError as exc:
        raise UsageError(f"Xen domain {target.domain.name!r}: its device model's QMP socket "
                         f"{live.qmp_socket} does not answer: {exc.desc}") from None
    disks = live_disks(devices, wanted)
    return Target(target.domain, target.toolstack,
                  Live(live.toolstack, live.state, live.qmp_socket, disks, live.domid,
                       live.pid, live.argv, live.memory_bytes), target.reason)
