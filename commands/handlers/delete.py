"""``snapshot-delete``: every disk's tag, the memory image, then the metadata file."""

from __future__ import annotations

import os
import sys

from commands.engine.actions import StepSpec
from commands.drivers.qemu_img import QemuImg
from commands.planning.recorded_disks import TaggedDisk, check_writable, internal_disks
from commands.handlers.messages import DeleteSnapshot
from commands.state.snapshot_metadata import metadata_path
from commands.engine.operation import Operation
from commands.handlers.operation_flow import carry_out, idle_domain, run_then_sync
from commands.bootstrap import Services
from commands.handlers.delete_external import delete_external, leftover_removals
from commands.toolstacks.base import Target
from commands.toolstacks.select import rules_of
from ledger.domain import DomainLedger


def delete_snapshot(cmd: DeleteSnapshot, svc: Services) -> int | None:
    """Delete snapshot ``cmd.name``; its children get its parent.

    Example: ``delete_snapshot(DeleteSnapshot("web", "before-upgrade"), svc)``.

    A disk that a running domain's device model has open (QEMU, or Xen's) loses its tag
    through QMP (``blockdev-snapshot-delete-internal-sync``: qemu-img cannot write to a
    locked image); any other disk through qemu-img. A qcow2 tag once deleted cannot be
    brought back; if a later disk fails, the ledger records which disks lost the tag, the
    snapshot is marked incomplete, and running the delete again finishes it. So that this
    is rare, every disk qemu-img will write is checked to be writable and not locked by
    another process before the first change. A disk whose tag is gone already (removed by
    hand, or by a delete whose record was lost) is no obstacle: the others lose theirs,
    and the step on it records that the tag was absent.
    """
    target, ledger = idle_domain(svc, cmd.domain)
    domain = target.domain
    ledger.entry(cmd.name)
    ledger.check_not_held(cmd.name)
    if cmd.metadata_only:
        forget_snapshot(cmd, svc, target, ledger)
        return None
    if ledger.entry(cmd.name)["record"].get("type") != "internal":
        return delete_external(cmd, svc, target, ledger)
    disks, plan = plan_delete(svc, target, ledger, cmd.name, open_disks(target, svc))
    device_of = {d.path: d.device for d in disks}

    def run(op: Operation, plan: list[StepSpec]) -> None:
        def partial(done: list[StepSpec]) -> str:
            devices = [device_of[s.target] for s in done if s.target in device_of]
            op.ledger.record_disks_removed(op.operation_id, cmd.name, devices, svc.actor)
            return (f"snapshot {cmd.name!r} was already removed from {', '.join(devices)} and "
                    "is now incomplete; run snapshot-delete again to finish")

        try:
            op.run(plan, on_irreversible=partial)
        finally:
            svc.sync()

    details = {"domain": domain.name, "toolstack": target.toolstack}
    if cmd.reason:
        details["reason"] = cmd.reason
    carry_out(svc, ledger, "delete", cmd.name, details, plan,
              lambda op: lambda lg: lg.record_removed(op.operation_id, cmd.name, svc.actor),
              run=run)


def plan_delete(svc: Services, target: Target, ledger: DomainLedger, name: str,
                opened: dict[str, tuple[str, str]],
                qemu_img: QemuImg | None = None) -> tuple[list[TaggedDisk], list[StepSpec]]:
    """The steps that delete snapshot ``name`` (every disk's tag, the memory image, the
    metadata file), its disks checked writable first; ``opened`` is ``open_disks``."""
    disks = internal_disks(target.domain, ledger, name, qemu_img or svc.qemu_img, "delete")
    record = ledger.entry(name)["record"]
    domain_dir = svc.settings.domain_dir(target.domain.uuid)
    for d in disks:
        if d.present and os.path.realpath(d.path) not in opened:
            check_writable(d.device, d.path)
    for d in disks:
        if not d.present:
            print(f"xlsnap: warning: disk {d.device!r} ({d.path}) has no tag {d.tag!r} "
                  "already; deleting it from the other disks", file=sys.stderr)
    plan = [_tag_step(opened, d) for d in disks]
    memory = record.get("memory_file")
    if memory and os.path.lexists(memory):
        plan.append(StepSpec("memory-remove", memory, {"path": memory}))
    plan.append(StepSpec("metadata-remove", str(metadata_path(domain_dir, name)),
                         {"dir": str(domain_dir), "name": name, "record": record}))
    plan += leftover_removals(target, ledger, name, qemu_img or svc.qemu_img)
    return disks, plan


def forget_snapshot(cmd: DeleteSnapshot, svc: Services, target: Target,
                    ledger: DomainLedger) -> None:
    """``--metadata``: record the snapshot as deleted and remove its metadata file only.

    The way out for a snapshot whose image is gone (nothing left to delete it from),
    or for an operator who removes the files by hand: its tags, overlays and memory
    image are not touched (and ``check`` will report tags it no longer knows).
    """
    domain = target.domain
    record = ledger.entry(cmd.name)["record"]
    domain_dir = svc.settings.domain_dir(domain.uuid)
    plan = [StepSpec("metadata-remove", str(metadata_path(domain_dir, cmd.name)),
                     {"dir": str(domain_dir), "name": cmd.name, "record": record})]
    carry_out(svc, ledger, "delete", cmd.name,
              {"domain": domain.name, "toolstack": target.toolstack, "metadata_only": True},
              plan, lambda op: lambda lg: lg.record_removed(op.operation_id, cmd.name, svc.actor),
              run=run_then_sync(svc), message="metadata only: disks and files kept")


def open_disks(target: Target, svc: Services) -> dict[str, tuple[str, str]]:
    """Images a running domain's device model has open: real path -> (socket, device)."""
    if target.live is None:
        return {}
    target = rules_of(target.toolstack).with_live_disks(target, svc.tools.qmp,
                                                         require_all=False)
    live = target.live
    assert live is not None
    return {os.path.realpath(d.path): (live.qmp_socket, d.device) for d in live.disks}


def _tag_step(opened: dict[str, tuple[str, str]], disk: TaggedDisk) -> StepSpec:
    """Through QMP when the disk is open in the running domain, else qemu-img."""
    where = opened.get(os.path.realpath(disk.path))
    if where is not None:
        return StepSpec("live-tag-delete", disk.path, {"socket": where[0], "device": where[1],
                                                       "tag": disk.tag, "path": disk.path})
    return StepSpec("internal-snapshot-delete", disk.path, {"path": disk.path, "tag": disk.tag})
