"""``snapshot-revert`` to an external (or mixed) snapshot of a stopped domain."""

from __future__ import annotations

import os
import uuid
from typing import Any

from commands.engine.actions import StepSpec
from commands.planning.config_rewrite import config_rewrite_step
from commands.planning.snapshot_disks import choose_overlay
from commands.errors import RecordMismatch, UsageError
from commands.planning.recorded_disks import check_writable
from ledger.names import RESERVED_PREFIX
from commands.handlers.messages import RevertSnapshot
from commands.handlers.operation_flow import carry_out, run_then_sync
from commands.state.snapshot_metadata import metadata_path
from commands.bootstrap import Services
from commands.toolstacks.base import Target
from ledger.domain import DomainLedger


def revert_external(cmd: RevertSnapshot, svc: Services, target: Target,
                    ledger: DomainLedger) -> list[str]:
    """Point every disk of the stopped domain at a fresh overlay on the snapshot's state.

    Each disk gets a fresh overlay on the image that holds the snapshot's state (its
    base), and the config is rewritten to use it (atomically, the old one kept beside it,
    as create does). The image that was in use stays as it is, a leaf of the tree: the
    new overlay is listed in the snapshot's record (``branches``), so a later delete of
    the snapshot knows it, and drops an abandoned branch only then.
    """
    domain = target.domain
    entry = ledger.entry(cmd.name)
    record: dict[str, Any] = entry["record"]
    if entry.get("removed_devices"):
        raise UsageError(f"snapshot {cmd.name!r} is incomplete (removed from "
                         f"{', '.join(sorted(entry['removed_devices']))}); it can only be "
                         "deleted")
    operation_id = str(uuid.uuid4())
    entries = {e.spec.vdev: e for e in domain.disks}
    plan: list[StepSpec] = []
    fresh: list[tuple[Any, str]] = []
    formats: dict[str, str] = {}
    disks = []
    safety = f"{RESERVED_PREFIX}revert-{operation_id[:8]}"
    tagged: list[tuple[str, str]] = []      # a mixed snapshot's internal disks: (image, tag)
    for disk in record["disks"]:
        device, base = disk["device"], disk["file"]
        if device not in entries:
            raise UsageError(f"disk {device!r} of snapshot {cmd.name!r} is no longer in "
                             f"domain {domain.name!r}'s config")
        if not os.path.exists(base):
            raise UsageError(f"disk {device!r}: image {base} that holds snapshot "
                             f"{cmd.name!r} is missing")
        if disk.get("type") != "external":
            tagged.append((_internal_disk(cmd.name, disk, entries[device].spec.target,
                                          svc.qemu_img), disk["name"]))
            disks.append(disk)
            continue
        overlay = choose_overlay(base, f"{cmd.name}-revert-{operation_id[:8]}", device,
                                 None, svc.qemu_img)
        plan.append(StepSpec("overlay-create", overlay, {
            "base": base, "overlay": overlay, "base_format": disk.get("format") or "qcow2"}))
        fresh.append((entries[device], overlay))
        formats[device] = "qcow2"
        disks.append({**disk, "branches": [*disk.get("branches", []), overlay]})
    new = {**record, "disks": disks}
    plan += [StepSpec("safety-tag-create", p, {"path": p, "tag": safety}) for p, _ in tagged]
    plan += [StepSpec("internal-snapshot-apply", p, {"path": p, "tag": tag, "safety": safety})
             for p, tag in tagged]
    if fresh:
        plan.append(config_rewrite_step(domain, fresh, f"revert-{operation_id[:8]}",
                                        formats))
    domain_dir = svc.settings.domain_dir(domain.uuid)
    plan.append(StepSpec("metadata-replace", str(metadata_path(domain_dir, cmd.name)), {
        "dir": str(domain_dir), "name": cmd.name, "record": new, "old_record": record}))
    plan += [StepSpec("safety-tag-delete", p, {"path": p, "tag": safety}) for p, _ in tagged]
    edits = {cmd.name: new}
    op = carry_out(svc, ledger, "revert", cmd.name,
                   {"domain": domain.name, "toolstack": "offline", "edited": edits}, plan,
                   lambda op: lambda lg: record_revert(lg, op.operation_id, cmd.name, edits,
                                                       svc.actor),
                   run=run_then_sync(svc), operation_id=operation_id)
    return op.warnings


def _internal_disk(name: str, disk: dict[str, Any], current: str | None,
                   qemu_img: Any) -> str:
    """The image of a mixed snapshot's internal disk, checked: the disk in use, holding
    its tag once (it is reverted in place, as an internal snapshot is)."""
    path = disk["file"]
    if current is None or os.path.realpath(current) != os.path.realpath(path):
        raise UsageError(f"disk {disk['device']!r} of snapshot {name!r} is {path}, but the "
                         f"domain now uses {current}: reverting a mixed snapshot whose "
                         "internal disk has an overlay on top is not supported; nothing "
                         "changed")
    check_writable(disk["device"], path)
    found = qemu_img.info(path, force_share=True).find(disk["name"])
    if len(found) != 1:
        raise RecordMismatch(f"disk {disk['device']!r} ({path}) has {len(found)} snapshot "
                             f"tags named {disk['name']!r} where the ledger expects one; run "
                             "'xlsnap check'")
    return path


def record_revert(ledger: DomainLedger, operation_id: str, name: str,
                  edits: dict[str, dict[str, Any]], actor: dict[str, Any]) -> None:
    """The revert's facts: the snapshot's record with its new branch, then the revert."""
    for other, new in edits.items():
        ledger.record_edited(operation_id, other, other, new, actor)
    ledger.record_reverted(operation_id, name, actor)
