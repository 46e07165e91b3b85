"""``snapshot-edit``: a snapshot's new name, or new description, as one operation."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

from commands.engine.actions import StepSpec
from commands.errors import UsageError
from commands.planning.recorded_disks import check_writable, internal_disks
from commands.state.snapshot_metadata import metadata_path
from commands.handlers.operation_flow import carry_out, run_then_sync
from commands.bootstrap import Services
from ledger.names import RESERVED_PREFIX, check_snapshot_name


def edit_snapshot(svc: Services, domain_name: str, name: str, new_name: str | None,
                  description: str | None) -> dict[str, Any]:
    """Rename snapshot ``name`` and/or set its description; returns the new record.

    A rename renames everything that carries the name: each disk's qcow2 tag, the
    memory image in xlsnap's folder, the metadata file. qemu-img cannot rename a tag, so
    each disk takes it anew from the same state: a safety tag of the disk as it is, the
    old tag applied, the new tag taken, the disk put back from the safety tag; only then
    are the old and safety tags dropped. Until then every step is undone on failure (and
    by ``recover`` after a crash). Snapshots of a stopped domain only (QMP has no rename of
    an internal snapshot: ``blockdev-snapshot-internal-sync`` and
    ``blockdev-snapshot-delete-internal-sync`` only); a snapshot whose
    memory lives inside its qcow2 images is refused (a new tag would not hold it).
    """
    if new_name is None and description is None:
        raise UsageError("nothing to edit: give --rename NEW and/or --description TEXT")
    target = svc.resolve(domain_name)
    domain = target.domain
    ledger = svc.idle_ledger_for(domain)
    entry = ledger.entry(name)
    new = name if new_name is None else check_snapshot_name(new_name)
    if new != name:
        ledger.check_new_name(new)
        ledger.check_not_held(name, "renamed")
    record: dict[str, Any] = dict(entry["record"])
    if description is not None:
        record["description"] = description
    domain_dir = svc.settings.domain_dir(domain.uuid)
    plan: list[StepSpec] = []
    operation_id = str(uuid.uuid4())
    if new != name:
        record["name"] = new
        record["disks"] = [{**d, "name": new} if d.get("type") == "internal" else dict(d)
                           for d in record["disks"]]
        plan += _rename_tags(svc, target, ledger, name, new, record, operation_id)
        memory = record.get("memory_file")
        if memory and Path(memory).name == f"{name}.save" and os.path.lexists(memory):
            moved = str(Path(memory).with_name(f"{new}.save"))
            if os.path.lexists(moved):
                raise UsageError(f"{moved} exists already; move it away first")
            plan.append(StepSpec("file-rename", memory, {"old": memory, "new": moved}))
            record["memory_file"] = moved
        if metadata_path(domain_dir, new).exists():
            raise UsageError(f"{metadata_path(domain_dir, new)} exists already")
    plan.append(StepSpec("metadata-write", str(metadata_path(domain_dir, new)),
                         {"dir": str(domain_dir), "name": new, "record": record}))
    if new != name:
        plan.append(StepSpec("metadata-remove", str(metadata_path(domain_dir, name)),
                             {"dir": str(domain_dir), "name": name,
                              "record": entry["record"]}))
        plan += _drop_old_tags(plan, name)
    carry_out(svc, ledger, "edit", name, {"domain": domain.name, "new_name": new,
                                          "record": record}, plan,
              lambda op: lambda lg: lg.record_edited(op.operation_id, name, new, record,
                                                     svc.actor),
              run=run_then_sync(svc), operation_id=operation_id)
    return record


def _rename_tags(svc: Services, target: Any, ledger: Any, name: str, new: str,
                 record: dict[str, Any], operation_id: str) -> list[StepSpec]:
    """Per disk: safety tag, apply the old tag, take the new one, put the disk back."""
    internal = [d for d in record["disks"] if d.get("type") == "internal"]
    if not internal:
        return []
    if target.live is not None:
        raise UsageError(
            f"domain {target.domain.name!r} is running: the tags of snapshot {name!r} cannot "
            "be renamed in its open images (QEMU can create and delete an internal snapshot "
            "live, not rename one); stop the domain and run this again, or change only "
            "--description now")
    if record.get("memory_format") == "qcow2-vmstate":
        raise UsageError(f"snapshot {name!r} holds the domain's memory inside its qcow2 "
                         "images; a renamed tag would not: not renamed")
    disks = internal_disks(target.domain, ledger, name, svc.qemu_img, "rename")
    tops = {e.spec.vdev: os.path.realpath(e.spec.target) for e in target.domain.disks
            if e.spec.target}
    for d in disks:
        if tops.get(d.device) != os.path.realpath(d.path):
            # Its tag would be taken anew by applying tags to a backing file, which an
            # overlay reads through: refused, as a revert under an overlay is.
            raise UsageError(f"snapshot {name!r}'s tag on disk {d.device!r} is in {d.path}, "
                             "which now has an overlay on top (a later external snapshot); "
                             "renaming it is not supported")
    for d in disks:
        check_writable(d.device, d.path)
        if svc.qemu_img.info(d.path, force_share=True).find(new):
            raise UsageError(f"disk {d.device!r} ({d.path}) has a tag {new!r} already that "
                             "the ledger does not know; choose another name")
    safety = f"{RESERVED_PREFIX}rename-{operation_id[:8]}"
    steps: list[StepSpec] = []
    for d in disks:
        steps += [
            StepSpec("safety-tag-create", d.path, {"path": d.path, "tag": safety}),
            StepSpec("internal-snapshot-apply", d.path,
                     {"path": d.path, "tag": name, "safety": safety}),
            StepSpec("internal-snapshot-create", d.path, {"path": d.path, "tag": new}),
            StepSpec("internal-snapshot-apply", d.path,
                     {"path": d.path, "tag": safety, "safety": new}),
        ]
    return steps


def _drop_old_tags(plan: list[StepSpec], name: str) -> list[StepSpec]:
    """The last steps: each disk's old tag and safety tag (clean-ups that fail nothing)."""
    out: list[StepSpec] = []
    for spec in plan:
        if spec.action == "safety-tag-create":
            path = spec.params["path"]
            out += [StepSpec("renamed-tag-delete", path, {"path": path, "tag": name}),
                    StepSpec("safety-tag-delete", path,
                             {"path": path, "tag": spec.params["tag"]})]
    return out
