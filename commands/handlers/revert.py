"""``snapshot-revert`` of an internal snapshot of a stopped domain (running: ``revert_live``).

Each disk first gets a temporary safety tag, then is reverted by the target tag's
ID (qemu-img's ``-a`` prefers IDs over names). If any disk fails, the reverted ones
go back to their safety tag. The safety tags are removed at the end.
"""

from __future__ import annotations

import uuid

from commands.engine.actions import StepSpec
from commands.config.domains import Domain
from commands.planning.corrupt_images import after_failure, refuse_corrupt
from commands.errors import OperationFailed, UsageError
from commands.planning.recorded_disks import TaggedDisk, internal_disks
from commands.handlers.messages import RevertSnapshot
from commands.engine.operation import Operation
from commands.handlers.operation_flow import carry_out, idle_domain
from commands.bootstrap import Services
from commands.handlers.revert_under_overlay import revert_under_overlay, under_overlay
from ledger.names import RESERVED_PREFIX


def revert_snapshot(cmd: RevertSnapshot, svc: Services) -> list[str]:
    """Revert every disk to snapshot ``cmd.name``; returns warnings (left-over tags).

    Example: ``revert_snapshot(RevertSnapshot("web", "before-upgrade"), svc)``.
    """
    target, ledger = idle_domain(svc, cmd.domain)
    domain = target.domain
    record = ledger.entry(cmd.name)["record"]
    if target.live is not None or record.get("memory") == "yes":
        from commands.handlers.revert_live import revert_live

        return revert_live(cmd, svc, target, ledger)
    if cmd.state is not None:
        raise UsageError(f"--{cmd.state} applies to a running domain; domain {domain.name!r} "
                         "is stopped and stays stopped")
    if record.get("type") != "internal":
        from commands.handlers.revert_external import revert_external

        return revert_external(cmd, svc, target, ledger)
    disks = internal_disks(domain, ledger, cmd.name, svc.qemu_img, "revert")
    if under_overlay(domain, disks):
        return revert_under_overlay(cmd, svc, target, ledger, disks)
    _check_disks_in_use(domain, disks)
    for disk in disks:
        refuse_corrupt(disk.device, disk.path, disk.corrupt)
    operation_id = str(uuid.uuid4())
    safety = f"{RESERVED_PREFIX}revert-{operation_id[:8]}"
    plan = [StepSpec("safety-tag-create", d.path, {"path": d.path, "tag": safety})
            for d in disks]
    plan += [StepSpec("internal-snapshot-apply", d.path,
                      {"path": d.path, "tag": d.tag, "safety": safety}) for d in disks]
    plan += [StepSpec("safety-tag-delete", d.path, {"path": d.path, "tag": safety})
             for d in disks]
    def run(op: Operation, plan: list[StepSpec]) -> None:
        try:
            op.run(plan)
        except OperationFailed as exc:
            raise after_failure(exc, [d.path for d in disks], svc.qemu_img) from None

    op = carry_out(svc, ledger, "revert", cmd.name,
                   {"domain": domain.name, "safety_tag": safety, "toolstack": "offline"}, plan,
                   lambda op: lambda lg: lg.record_reverted(op.operation_id, cmd.name, svc.actor),
                   run=run, operation_id=operation_id)
    return op.warnings


def _check_disks_in_use(domain: Domain, disks: list[TaggedDisk]) -> None:
    """Refuse when a disk of the snapshot is no longer the domain's live image.

    Reverting a backing file under an overlay would corrupt the overlay.
    """
    live = {e.spec.vdev: e.spec.target for e in domain.disks}
    for disk in disks:
        if live.get(disk.device) != disk.path:
            raise UsageError(
                f"disk {disk.device!r} of the snapshot is {disk.path}, but the domain now "
                f"uses {live.get(disk.device) or 'no such disk'}; reverting under an overlay "
                "is not supported"
            )
