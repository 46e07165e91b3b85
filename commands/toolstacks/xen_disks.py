"""Which of a running Xen domain's disks QMP can snapshot, by libxl's own rules."""

from __future__ import annotations

from typing import Any, NamedTuple

from commands.drivers.xl import XlDisk, XlDomain, flag


class DiskVerdict(NamedTuple):
    """One disk: the backend libxl gives it, and why QMP cannot snapshot it ("" if it can)."""

    vdev: str
    backend: str
    writable: bool
    refusal: str = ""


def backend_of(disk: XlDisk) -> str:
    """The backend libxl 4.17 gives ``disk``.

    ``xl list -l`` prints no ``backend`` for a disk unless its config chose one
    (``backendtype=``): libxl picks it when the domain starts, in
    ``libxl__device_disk_set_backend`` (Xen 4.17.5 tools/libs/light/libxl_device.c:425-470,
    ``disk_try_backend`` :306-400): with no choice made it takes the first that fits of

    - ``phy`` (the kernel's blkback): raw format only; with a ``script=``, or served by a
      driver domain, or a regular file or block device, so a raw image is always ``phy``;
    - ``qdisk`` (QEMU in dom0, reached through ``qmp-libxl-<domid>``): any format, no script;

    (``tap`` is never available; ``standalone`` is for virtio disks). Only a qcow2 image
    served by dom0's qdisk has internal snapshots that QMP can take. A disk served from a
    driver domain (``backend_domid`` not 0) or a domain whose device model runs in a stub
    domain is outside the reach of dom0's QMP socket: refused by name.
    """
    chosen = disk.backend if disk.backend not in ("", "unknown") else ""
    if chosen:
        return chosen
    if disk.format == "raw":
        return "phy"
    if disk.script:
        return "none"  # libxl refuses it: qdisk takes no script
    return "qdisk"


def classify(dom: XlDomain) -> list[DiskVerdict]:
    """A verdict for each disk (cdroms and empty drives are left out)."""
    stubdom = _stubdom(dom.config)
    verdicts = []
    for disk in dom.disks:
        if disk.is_cdrom or disk.format == "empty" or not disk.vdev:
            continue
        backend = backend_of(disk)
        verdicts.append(DiskVerdict(disk.vdev, backend, disk.readwrite,
                                    _refusal(disk, backend, stubdom)))
    return verdicts


def _refusal(disk: XlDisk, backend: str, stubdom: bool) -> str:
    if disk.backend_domid:
        return (f"it is served from driver domain {disk.backend_domid}, whose device model "
                "dom0's QMP cannot reach")
    if stubdom:
        return ("the domain's device model runs in a stub domain, which dom0's QMP cannot "
                "reach")
    if backend == "phy":
        why = f"script {disk.script}" if disk.script else f"{disk.format} format"
        return (f"libxl serves it with the kernel's blkback (backend phy, {why}), not QEMU, "
                "and a raw image has no internal snapshots")
    if backend != "qdisk":
        return f"its backend is {backend}, not QEMU's qdisk"
    if disk.format != "qcow2":
        return f"QEMU has no internal snapshots of {disk.format} images"
    return ""


def _stubdom(config: dict[str, Any]) -> bool:
    b_info = config.get("b_info") or {}
    try:
        return flag(b_info.get("device_model_stubdomain_override"))
    except ValueError:
        return False
