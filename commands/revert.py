"""``snapshot-revert`` of an internal snapshot of a stopped domain.

Each disk first gets a temporary safety tag, then is reverted by the target tag's
ID (qemu-img's ``-a`` prefers IDs over names). If any disk fails, the reverted ones
go back to their safety tag. The safety tags are removed at the end.
"""

from __future__ import annotations

from commands.domains import Domain, load_domain
from commands.drivers.process import ProcessResult
from commands.drivers.qemu_img import QemuImg
from commands.errors import UsageError
from commands.existing import TaggedDisk, internal_disks
from commands.messages import RevertSnapshot
from commands.operation import Operation, Step
from commands.services import Services
from ledger.names import RESERVED_PREFIX


def revert_snapshot(cmd: RevertSnapshot, svc: Services) -> list[str]:
    """Revert every disk to snapshot ``cmd.name``; returns warnings (left-over tags).

    Example: ``revert_snapshot(RevertSnapshot("web", "before-upgrade"), svc)``.
    """
    domain = load_domain(svc.settings.config_dir, cmd.domain)
    ledger = svc.ledger_for(domain)
    ledger.check_idle()
    disks = internal_disks(domain, ledger, cmd.name, svc.qemu_img, "revert")
    _check_disks_in_use(domain, disks)
    op = Operation(svc.app, ledger, svc.actor)
    safety = f"{RESERVED_PREFIX}revert-{op.operation_id[:8]}"
    q = svc.qemu_img
    steps = [_safety_step(q, d.path, safety) for d in disks]
    steps += [_apply_step(q, d.path, d.tag, safety) for d in disks]
    steps += [Step("safety-tag-delete", d.path, [q.binary, "snapshot", "-d", safety, d.path],
                   do=lambda p=d.path: q.snapshot_delete(p, safety), best_effort=True)
              for d in disks]
    op.start("revert", cmd.name, {"domain": domain.name, "safety_tag": safety})
    op.run(steps)
    op.complete(lambda lg: lg.record_reverted(op.operation_id, cmd.name, svc.actor))
    svc.sync()
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


def _safety_step(q: QemuImg, path: str, safety: str) -> Step:
    def undo() -> ProcessResult:
        if not q.info(path).find(safety):
            return ProcessResult([q.binary, "snapshot", "-d", safety, path], 0,
                                 detail={"absent": True})
        return q.snapshot_delete(path, safety)

    return Step("safety-tag-create", path, [q.binary, "snapshot", "-c", safety, path],
                do=lambda: q.snapshot_create(path, safety), undo=undo,
                undo_argv=[q.binary, "snapshot", "-d", safety, path])


def _apply_step(q: QemuImg, path: str, tag: str, safety: str) -> Step:
    return Step("internal-snapshot-apply", path, [q.binary, "snapshot", "-a", f"<id of {tag}>",
                                                  path],
                do=lambda: q.snapshot_apply(path, tag),
                undo=lambda: q.snapshot_apply(path, safety),
                undo_argv=[q.binary, "snapshot", "-a", f"<id of {safety}>", path])
