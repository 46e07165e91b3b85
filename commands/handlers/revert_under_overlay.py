"""``snapshot-revert`` to an internal snapshot whose image now has an overlay on top."""

from __future__ import annotations

import uuid
from typing import Any

from commands.engine.actions import StepSpec
from commands.planning.config_rewrite import config_rewrite_step
from commands.planning.snapshot_disks import choose_overlay
from commands.config.domains import Domain
from commands.planning.recorded_disks import TaggedDisk
from commands.handlers.messages import RevertSnapshot
from commands.handlers.operation_flow import carry_out, run_then_sync
from commands.state.snapshot_metadata import metadata_path
from commands.handlers.revert_external import record_revert
from commands.bootstrap import Services
from commands.toolstacks.base import Target
from ledger.domain import DomainLedger
from ledger.names import RESERVED_PREFIX


def under_overlay(domain: Domain, disks: list[TaggedDisk]) -> bool:
    """True when some disk's tagged image is not the one the domain uses (all still there)."""
    live = {e.spec.vdev: e.spec.target for e in domain.disks}
    return all(d.device in live for d in disks) and any(live[d.device] != d.path
                                                        for d in disks)


def revert_under_overlay(cmd: RevertSnapshot, svc: Services, target: Target,
                         ledger: DomainLedger, disks: list[TaggedDisk]) -> list[str]:
    """Point every disk at a new image holding snapshot ``cmd.name``.

    Applying the tag would change what the overlays above read, so such a disk instead gets
    a new image holding the snapshot (``qemu-img convert -l``, over the tagged image's own
    backing file so only what the snapshot adds is copied), and the config is rewritten
    to use it (a disk whose tagged image is the one in use is reverted in place, with a
    safety tag, as ``commands.handlers.revert`` does). Everything else stays as it was: the image that was in use is a leaf of its
    branch. The new images are listed in the snapshot's record (``branches``).
    """
    domain = target.domain
    record: dict[str, Any] = ledger.entry(cmd.name)["record"]
    operation_id = str(uuid.uuid4())
    entries = {e.spec.vdev: e for e in domain.disks}
    plan: list[StepSpec] = []
    fresh: list[tuple[Any, str]] = []
    made: dict[str, str] = {}
    live = {e.spec.vdev: e.spec.target for e in domain.disks}
    direct = [d for d in disks if live[d.device] == d.path]
    safety = f"{RESERVED_PREFIX}revert-{operation_id[:8]}"
    for disk in [d for d in disks if d not in direct]:
        info = svc.qemu_img.info(disk.path, force_share=True)
        below = info.backing_file
        new = choose_overlay(disk.path, f"{cmd.name}-revert-{operation_id[:8]}", disk.device,
                             None, svc.qemu_img)
        plan.append(StepSpec("image-from-tag", new, {
            "image": disk.path, "tag": disk.tag, "new": new, "backing": below,
            "backing_format": svc.qemu_img.info(below, force_share=True).format
            if below else None}))
        fresh.append((entries[disk.device], new))
        made[disk.device] = new
    new_record = {**record, "disks": [
        {**d, "branches": [*d.get("branches", []), made[d["device"]]]} if d["device"] in made
        else d for d in record["disks"]]}
    # a disk whose tagged image is the one in use is reverted in place, as ever
    plan += [StepSpec("safety-tag-create", d.path, {"path": d.path, "tag": safety})
             for d in direct]
    plan += [StepSpec("internal-snapshot-apply", d.path,
                      {"path": d.path, "tag": d.tag, "safety": safety}) for d in direct]
    plan.append(config_rewrite_step(domain, fresh, f"revert-{operation_id[:8]}"))
    domain_dir = svc.settings.domain_dir(domain.uuid)
    plan.append(StepSpec("metadata-replace", str(metadata_path(domain_dir, cmd.name)), {
        "dir": str(domain_dir), "name": cmd.name, "record": new_record,
        "old_record": record}))
    plan += [StepSpec("safety-tag-delete", d.path, {"path": d.path, "tag": safety})
             for d in direct]
    edits = {cmd.name: new_record}
    op = carry_out(svc, ledger, "revert", cmd.name,
                   {"domain": domain.name, "toolstack": "offline", "edited": edits}, plan,
                   lambda op: lambda lg: record_revert(lg, op.operation_id, cmd.name, edits,
                                                       svc.actor),
                   run=run_then_sync(svc), operation_id=operation_id)
    return op.warnings
