"""``snapshot-delete`` of a snapshot with external disks (a running QEMU's merges are
its block jobs)."""

from __future__ import annotations

import os
import sys
from typing import Any

from commands.engine.actions import StepSpec
from commands.engine.base_fingerprints import with_base_fingerprints
from commands.planning.config_rewrite import config_rewrite_step
from commands.errors import UsageError
from commands.planning.recorded_disks import check_writable
from commands.planning.foreign_users import foreign_users
from commands.planning.image_graph import disk_graph
from commands.planning.live_merge import as_before_commit, live_chain, live_merge_steps
from commands.state.atomic_files import allocated
from commands.planning.merge_plan import DiskMerge, free_space, internal_leftovers, moved_record, \
    plan_disk_merge, read_only
from commands.handlers.messages import DeleteSnapshot
from commands.state.snapshot_metadata import metadata_path
from commands.engine.operation import Operation
from commands.bootstrap import Services
from commands.toolstacks.base import Target
from commands.toolstacks.select import rules_of
from ledger.domain import DomainLedger

#: The steps that write an image into its backing file (``base``).
COMMITS = ("image-commit", "live-block-commit")


def delete_external(cmd: DeleteSnapshot, svc: Services, target: Target,
                    ledger: DomainLedger) -> int:
    """Delete snapshot ``cmd.name`` (external or mixed); returns the bytes freed.

    Each external disk's images are merged as ``commands.planning.merge_plan`` decides; internal
    disks of a mixed snapshot lose their tag. Every bad input is refused before the first
    change: a chain edited by hand since the snapshot (unless ``force``, then that disk's
    files are left as they are, and the operation records it), an image that cannot be
    written (read-only storage), too little free space for the merge. The records of the
    remaining snapshots whose files moved are rewritten when the delete completes (and by
    ``recover``, from the operation's ``edited`` details).
    """
    domain = target.domain
    live = target.live
    if live is not None and not rules_of(target.toolstack).merges_live:
        raise UsageError(f"snapshot {cmd.name!r} has external disks and domain "
                         f"{domain.name!r} is running under {target.toolstack}: stop the "
                         "domain (xl shutdown) and delete it then; merging them while it "
                         "runs is done for QEMU domains only")
    live_device = {d.vdev: d.device for d in live.disks} if live is not None else {}
    opened: set[str] = set()
    record = ledger.entry(cmd.name)["record"]
    others = [e["record"] for n, e in ledger.entries.items() if n != cmd.name]
    current = {e.spec.vdev: e for e in domain.disks}
    plan: list[StepSpec] = []
    removes: list[StepSpec] = []
    repoint: list[tuple[Any, str]] = []
    formats: dict[str, str] = {}
    forced: list[str] = []
    vdev_formats: dict[str, str] = {}
    images: set[str] = set()
    merges: list[tuple[str, DiskMerge]] = []
    for disk in record["disks"]:
        device = disk["device"]
        if disk.get("type") != "external":
            if disk["device"] not in set(ledger.entry(cmd.name).get("removed_devices", [])):
                plan.append(_tag_delete(disk, live, current.get(device)))
            continue
        entry = current.get(device)
        graph = disk_graph(device, entry.spec.target if entry else None,
                           [record, *others], svc.qemu_img)
        drift = _hand_edit(graph, disk)
        if drift and not cmd.force:
            raise UsageError(f"{drift}; the backing chain was edited since snapshot "
                             f"{cmd.name!r} was taken: nothing changed (--force deletes the "
                             "snapshot and leaves this disk's files as they are)")
        if drift:
            forced.append(drift)
            continue
        images.update(graph.info)
        if live is not None and device in live_device:
            as_before_commit(graph, disk, others)
        merge = plan_disk_merge(graph, disk, others)
        if live is not None and device in live_device:
            chain = live_chain(graph)
            opened.update(chain)
            merge.steps = live_merge_steps(merge.steps, chain, live.qmp_socket,
                                           live_device[device])
        merges.append((device, merge))
        for path, fmt in ((p, i.format) for p, i in graph.info.items()):
            formats[path] = fmt
        if merge.repoint_to and entry is not None and entry.span is not None \
                and domain.config_path is not None:
            repoint.append((entry, merge.repoint_to[0]))
            vdev_formats[device] = merge.repoint_to[1]
        plan += [s for s in merge.steps if s.action != "image-remove"]
        removes += [s for s in merge.steps if s.action == "image-remove"]
    _check_room(merges, opened)
    touched = [s.params["base"] for _, m in merges for s in m.steps
               if s.action in COMMITS] + [p for _, m in merges for p in m.removed]
    for path, user in foreign_users(svc.settings.config_dir, domain.name, touched,
                                    svc.qemu_img.binary).items():
        raise UsageError(f"{path} is the backing file of {user}: the merge would change or "
                         "remove it; nothing changed")
    edits = _edits(ledger, cmd.name, merges, formats)
    domain_dir = svc.settings.domain_dir(domain.uuid)
    if repoint:
        plan.append(config_rewrite_step(domain, repoint, f"delete-{cmd.name}",
                                        vdev_formats))
    for name, new in edits.items():
        plan.append(StepSpec("metadata-replace", str(metadata_path(domain_dir, name)), {
            "dir": str(domain_dir), "name": name, "record": new,
            "old_record": ledger.entry(name)["record"]}))
    memory = record.get("memory_file")
    if memory and os.path.lexists(memory):
        plan.append(StepSpec("memory-remove", memory, {"path": memory}))
    plan.append(StepSpec("metadata-remove", str(metadata_path(domain_dir, cmd.name)),
                         {"dir": str(domain_dir), "name": cmd.name, "record": record}))
    plan += removes
    device_of = {s.target: d for d, m in merges for s in m.steps}
    device_of.update({d["file"]: d["device"] for d in record["disks"]})
    before = sum(allocated(p) for p in images)
    op = Operation(svc.app, ledger, svc.actor, svc.tools)

    def partial(done: list[StepSpec]) -> str:
        devices = sorted({device_of[s.target] for s in done if s.target in device_of})
        op.ledger.record_disks_removed(op.operation_id, cmd.name, devices, svc.actor)
        return (f"snapshot {cmd.name!r} was already merged away on {', '.join(devices)} and "
                "is now incomplete; run snapshot-delete again to finish")

    details: dict[str, Any] = {"domain": domain.name, "toolstack": target.toolstack,
                               "edited": edits}
    if forced:
        details["forced"] = forced
    if cmd.reason:
        details["reason"] = cmd.reason
    op.start("delete", cmd.name, details, plan)
    try:
        op.run(plan, on_irreversible=partial)
    finally:
        svc.sync()
    op.complete(lambda lg: record_delete(lg, op.operation_id, cmd.name, edits, svc.actor))
    svc.sync()
    for warning in op.warnings:
        print(f"xlsnap: warning: {warning}; remove it by hand", file=sys.stderr)
    return max(0, before - sum(allocated(p) for p in images))


def record_delete(ledger: DomainLedger, operation_id: str, name: str,
                  edits: dict[str, dict[str, Any]], actor: dict[str, Any]) -> None:
    """The delete's facts: the other records whose files moved, then the removal."""
    for other, new in edits.items():
        ledger.record_edited(operation_id, other, other, with_base_fingerprints(new), actor)
    ledger.record_removed(operation_id, name, actor)


def _tag_delete(disk: dict[str, Any], live: Any, entry: Any) -> StepSpec:
    """An internal disk's tag deleted: through QMP when it is the image a running QEMU
    writes to (qemu-img cannot write a locked image), else with qemu-img."""
    path, tag = disk["file"], disk["name"]
    if live is None or entry is None:
        return StepSpec("internal-snapshot-delete", path, {"path": path, "tag": tag})
    on = next((d for d in live.disks if d.vdev == disk["device"]), None)
    if on is not None and os.path.realpath(on.path) == os.path.realpath(path):
        return StepSpec("live-tag-delete", path, {"socket": live.qmp_socket,
                                                  "device": on.device, "tag": tag, "path": path})
    if on is not None:
        raise UsageError(f"disk {disk['device']!r}: tag {tag!r} is in {path}, which the "
                         f"running domain reads under {on.path}: QEMU cannot delete it there; "
                         "stop the domain and delete the snapshot then: nothing changed")
    return StepSpec("internal-snapshot-delete", path, {"path": path, "tag": tag})


def _hand_edit(graph: Any, disk: dict[str, Any]) -> str | None:
    """Why the disk's chain is not as the snapshot left it (None when it is)."""
    overlay, base = disk.get("path"), disk["file"]
    info = graph.info.get(overlay)
    if info is not None and info.backing_file != base:
        return (f"overlay {overlay} of disk {disk['device']!r} is backed by "
                f"{info.backing_file or 'nothing'}, not by {base}")
    return None


def _check_room(merges: list[tuple[str, DiskMerge]], opened: set[str]) -> None:
    """Refuse an image that cannot be written, or too little space for the merge; the
    ``opened`` images of a running QEMU are written by QEMU (they are locked)."""
    for device, merge in merges:
        for step in merge.steps:
            path = step.params.get("base") if step.action in COMMITS else step.params.get("path")
            if step.action == "image-remove":
                folder = os.path.dirname(step.target)
                if read_only(step.target) or not os.access(folder, os.W_OK):
                    raise UsageError(f"disk {device!r}: {step.target} must be removed but "
                                     f"{folder} cannot be written: nothing changed")
                continue
            if not path:
                continue
            if read_only(path):
                raise UsageError(f"disk {device!r}: image {path} is on read-only storage; "
                                 "the merge must write to it: nothing changed")
            if path not in opened:
                check_writable(device, path)
    need: dict[int, int] = {}
    where: dict[int, str] = {}
    for _, merge in merges:       # every disk's merge: they may share a file system
        for path, size in merge.writes.items():
            dev = os.stat(os.path.dirname(path)).st_dev
            need[dev] = need.get(dev, 0) + size
            where[dev] = path
    for dev, size in need.items():
        free = free_space(where[dev])
        if size > free:
            raise UsageError(f"the merge may write {size} bytes to the file system of "
                             f"{where[dev]} but only {free} are free: nothing changed")


def _edits(ledger: DomainLedger, name: str, merges: list[tuple[str, DiskMerge]],
           formats: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The remaining snapshots' records whose files move, with their new names."""
    edits: dict[str, dict[str, Any]] = {}
    for other, entry in ledger.entries.items():
        if other == name:
            continue
        record = entry["record"]
        for device, merge in merges:
            record = moved_record(record, device, merge.moved, formats) or record
        if record is not entry["record"]:
            edits[other] = record
    return edits


def leftover_removals(target: Target, ledger: DomainLedger, name: str,
                      qemu_img: Any) -> list[StepSpec]:
    """An internal snapshot's delete: removal steps for the files it leaves holding nothing
    (images reverts made of it, the tagged image once nothing else needs it). Only for a
    stopped domain and a snapshot that reverts made images of."""
    record = ledger.entry(name)["record"]
    if target.live is not None or not any(d.get("branches") for d in record["disks"]):
        return []
    others = [e["record"] for n, e in ledger.entries.items() if n != name]
    current = {e.spec.vdev: e.spec.target for e in target.domain.disks}
    steps: list[StepSpec] = []
    for disk in record["disks"]:
        graph = disk_graph(disk["device"], current.get(disk["device"]), [record, *others],
                           qemu_img)
        steps += [StepSpec("image-remove", p, {"path": p})
                  for p in internal_leftovers(graph, disk, others)]
    return steps
