"""``snapshot-revert`` of a running Xen domain: destroy, revert the disks, restore memory."""

from __future__ import annotations

from typing import Any

from commands.engine.actions import StepSpec
from commands.drivers.open_files import holders
from commands.errors import RecordMismatch, UsageError
from commands.planning.recorded_disks import TaggedDisk
from commands.bootstrap import Services
from commands.toolstacks.base import Live


def xen_plan(name: str, record: dict[str, Any], domain: str, live: Live, after: str,
             safety: str, safety_file: str, svc: Services) -> list[StepSpec]:
    """The steps of a Xen revert; refuses what cannot work first.

    The domain's current state is first saved (``xl save -p`` to a safety image), so that
    every step can be undone: ``xl destroy`` (its device model lets go of the disks), a
    safety tag and the snapshot's tag applied on each disk with qemu-img (now unlocked),
    ``xl restore -p`` of the snapshot's memory image (a new domain id), then ``xl unpause``
    unless ``--paused``. The safety tags (through the restored device model's QMP) and
    image are removed at the end. ``xl destroy`` does not wait for the device model: the
    destroy step waits for it to exit and for the images to be open nowhere before any
    qemu-img call (``commands.toolstacks.device_model``).
    """
    if record.get("memory") != "yes" or not record.get("memory_file"):
        raise UsageError(f"snapshot {name!r} is disk-only: xl cannot resume a running domain "
                         f"from its disks alone; stop the domain ('xl shutdown {domain}'), "
                         "then revert it with --toolstack offline")
    disks = []
    for disk in record["disks"]:
        if disk["type"] != "internal":
            raise UsageError(f"snapshot {name!r} has an external disk {disk['device']!r}: "
                             "xl restore would start the domain on the images its saved "
                             "config names, not on a fresh overlay; stop the domain "
                             f"('xl shutdown {domain}'), revert it with --toolstack offline "
                             "(its config then names the new overlay) and start it with "
                             "'xl create'")
        found = svc.qemu_img.info(disk["file"], force_share=True).find(disk["name"])
        if len(found) != 1:
            raise RecordMismatch(f"disk {disk['device']!r} ({disk['file']}) has {len(found)} "
                                f"snapshot tags named {disk['name']!r} where the ledger "
                                f"expects one; run 'xlsnap check {domain}'")
        disks.append(disk["file"])
    where = {"toolstack": "xen", "socket": live.qmp_socket, "domain": domain,
             "was_running": live.was_running}
    plan = [
        StepSpec("memory-save", safety_file, {**where, "path": safety_file, "safety": True,
                                              "memory_bytes": live.memory_bytes}),
        StepSpec("domain-destroy", domain, {"domain": domain, "domid": live.domid,
                                            "safety": safety_file, "socket": live.qmp_socket,
                                            "images": disks}),
    ]
    plan += [StepSpec("safety-tag-create", p, {"path": p, "tag": safety}) for p in disks]
    plan += [StepSpec("internal-snapshot-apply", p, {"path": p, "tag": d["name"],
                                                     "safety": safety})
             for p, d in zip(disks, record["disks"])]
    plan += [
        StepSpec("domain-restore", record["memory_file"],
                 {"domain": domain, "path": record["memory_file"], "images": disks}),
        StepSpec("domain-unpause", domain, {**where, "resume": after == "running"}),
    ]
    # the restored device model has the images open: its QMP removes the safety tags
    plan += [StepSpec("xen-safety-tag-delete", p, {"domain": domain, "path": p, "tag": safety,
                                                   "vdev": d["device"]})
             for p, d in zip(disks, record["disks"])]
    return plan + [StepSpec("memory-safety-remove", safety_file, {"path": safety_file})]


def xen_stopped_plan(record: dict[str, Any], domain: str, disks: list[TaggedDisk], after: str,
                     safety: str) -> list[StepSpec]:
    """Revert of a domain snapshot of a stopped Xen domain: the disks back to their tags
    (qemu-img: no device model has them open, checked first), then ``xl restore -p`` of
    the snapshot's memory image and ``xl unpause`` unless ``after`` is paused; the safety
    tags go through the restored device model's QMP."""
    paths = [d.path for d in disks]
    open_by = holders(paths)
    if open_by:
        said = "; ".join(f"{p} by pid {', '.join(map(str, pids))}" for p, pids in open_by.items())
        raise UsageError(f"images of domain {domain!r} are open ({said}): is it running under "
                         "another name? nothing was changed")
    plan = [StepSpec("safety-tag-create", d.path, {"path": d.path, "tag": safety})
            for d in disks]
    plan += [StepSpec("internal-snapshot-apply", d.path, {"path": d.path, "tag": d.tag,
                                                          "safety": safety}) for d in disks]
    plan += [
        StepSpec("domain-restore", record["memory_file"],
                 {"domain": domain, "path": record["memory_file"], "images": paths}),
        StepSpec("domain-unpause", domain, {"toolstack": "xen", "socket": "", "domain": domain,
                                            "was_running": False,
                                            "resume": after == "running"}),
    ]
    return plan + [StepSpec("xen-safety-tag-delete", d.path, {
        "domain": domain, "path": d.path, "tag": safety, "vdev": d.device}) for d in disks]
