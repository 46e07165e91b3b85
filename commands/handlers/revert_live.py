"""``snapshot-revert`` of a running domain: its disks and memory back to the snapshot."""

from __future__ import annotations

import os
import uuid
from typing import Any

from commands.engine.actions import StepSpec
from commands.drivers.qmp import UnsafePath, check_absolute, tag_clashes
from commands.errors import RecordMismatch, UsageError
from commands.state.atomic_files import sha256_file
from commands.engine.resume_guard import run_guarded
from commands.handlers.messages import RevertSnapshot
from commands.handlers.operation_flow import carry_out
from commands.handlers.revert_external import record_revert
from commands.planning.snapshot_disks import choose_overlay
from commands.state.snapshot_metadata import metadata_path
from commands.bootstrap import Services
from commands.state.memory_host import elsewhere_message
from commands.toolstacks.base import RUNNING_STATES, Live, LiveDisk, Target
from commands.toolstacks.qemu_argv import restart_argv
from commands.toolstacks.select import rules_of
from ledger.domain import DomainLedger
from ledger.names import RESERVED_PREFIX

Record = dict[str, Any]


def revert_live(cmd: RevertSnapshot, svc: Services, target: Target,
                ledger: DomainLedger) -> list[str]:
    """Revert a running domain to snapshot ``cmd.name``; returns warnings.

    QEMU, memory inside the qcow2 images: a safety whole-VM snapshot, then
    ``snapshot-load`` (undone by loading the safety snapshot: a failed load leaves QEMU
    stopped, and it is resumed). QEMU, memory in a file or disks only: the current state
    is saved to a safety memory image, QEMU is stopped (``quit``), the disks are reverted
    (qcow2 tags through qemu-img, or a fresh overlay on an external snapshot's base), and
    QEMU is started again from its own command line, with ``-incoming defer`` and the
    snapshot's memory image (or cold, for a disk-only snapshot). Xen: ``commands.handlers.revert_xen``.
    The state after the revert is the snapshot's, or ``--running`` / ``--paused``. A memory
    image whose sha256 differs from the ledger's is refused (exit 3) unless ``--force``.
    """
    entry = ledger.entry(cmd.name)
    record: Record = entry["record"]
    domain, live = target.domain, target.live
    if entry.get("removed_devices"):
        raise UsageError(f"snapshot {cmd.name!r} is incomplete (removed from "
                         f"{', '.join(entry['removed_devices'])}); it can only be deleted")
    if live is None and rules_of(record.get("toolstack")).reverts_by_restore \
            and record.get("memory_file"):
        return _revert_stopped_xen(cmd, svc, target, ledger)
    if live is None:
        raise UsageError(f"snapshot {cmd.name!r} holds the memory of a running domain but "
                         f"domain {domain.name!r} is not running (toolstack {target.toolstack}); "
                         "start it, then revert")
    taken_by = record.get("toolstack")
    if record.get("memory") == "yes" and taken_by != live.toolstack:
        raise UsageError(f"snapshot {cmd.name!r} holds memory saved through {taken_by}, but "
                         f"domain {domain.name!r} now runs under {live.toolstack}")
    after = cmd.state or ("running" if record.get("state") in RUNNING_STATES else "paused")
    checked = check_memory_image(cmd.name, record, cmd.force, entry.get("taken_on"))
    operation_id = str(uuid.uuid4())
    safety = f"{RESERVED_PREFIX}revert-{operation_id[:8]}"
    safety_file = str(svc.settings.domain_dir(domain.uuid) / f".{safety}.save")
    if rules_of(live.toolstack).reverts_by_restore:
        from commands.handlers.revert_xen import xen_plan

        plan = xen_plan(cmd.name, record, domain.name, live, after, safety, safety_file, svc)
    elif record.get("memory_format") == "qcow2-vmstate":
        plan = vm_load_plan(record, live, after, safety, domain.name)
        refuse_ambiguous_load(svc, live.qmp_socket, cmd.name, plan)
    else:
        plan = restart_plan(record, live, after, safety, safety_file, domain.name, svc)
    edits = branch_edits(plan, cmd.name, record, svc, domain.uuid)
    svc.say(f"plan: {', '.join(s.action for s in plan)}; afterwards {after}")
    message = "memory image restored with --force despite a digest mismatch" \
        if checked.get("forced") else ""
    op = carry_out(svc, ledger, "revert", cmd.name,
                   {"domain": domain.name, "toolstack": live.toolstack, "state_after": after,
                    "safety": safety, **checked, **({"edited": edits} if edits else {})}, plan,
                   lambda op: lambda lg: record_revert(lg, op.operation_id, cmd.name, edits,
                                                       svc.actor),
                   run=lambda op, plan: run_guarded(op, plan, live),
                   operation_id=operation_id, message=message)
    return op.warnings


def refuse_ambiguous_load(svc: Services, socket: str, name: str,
                          plan: list[StepSpec]) -> None:
    """Exit 2 before anything runs when ``snapshot-load`` would find another snapshot by ID."""
    load = next(s for s in plan if s.action == "vm-snapshot-load")
    clashes = tag_clashes(svc.tools.qmp(socket).query_block(), name, load.params["devices"])
    if clashes:
        raise UsageError(f"snapshot {name!r} cannot be reverted while the domain runs: its "
                         f"name is also the ID of another snapshot ({'; '.join(clashes)}) and "
                         "QEMU's snapshot-load finds a snapshot by ID first; stopped, xlsnap "
                         "reverts its disks by their own ID (without the memory)")


def _revert_stopped_xen(cmd: RevertSnapshot, svc: Services, target: Target,
                        ledger: DomainLedger) -> list[str]:
    """A Xen domain snapshot of a stopped domain: disks back, then ``xl restore`` of its
    memory image, paused or running (``--paused``/``--running``, else as it was)."""
    from commands.planning.recorded_disks import internal_disks
    from commands.handlers.revert_xen import xen_stopped_plan

    record: Record = ledger.entry(cmd.name)["record"]
    domain = target.domain
    after = cmd.state or ("running" if record.get("state") in RUNNING_STATES else "paused")
    checked = check_memory_image(cmd.name, record, cmd.force,
                                 ledger.entry(cmd.name).get("taken_on"))
    disks = internal_disks(domain, ledger, cmd.name, svc.qemu_img, "revert")
    operation_id = str(uuid.uuid4())
    safety = f"{RESERVED_PREFIX}revert-{operation_id[:8]}"
    plan = xen_stopped_plan(record, domain.name, disks, after, safety)
    op = carry_out(svc, ledger, "revert", cmd.name,
                   {"domain": domain.name, "toolstack": "xen", "state_after": after,
                    "safety": safety, **checked}, plan,
                   lambda op: lambda lg: lg.record_reverted(op.operation_id, cmd.name, svc.actor),
                   operation_id=operation_id)
    return op.warnings


def check_memory_image(name: str, record: Record, force: bool,
                       taken_on: str | None = None) -> dict[str, Any]:
    """Compare the memory image with the ledger's sha256; exit 3 on a mismatch unless forced.
    An image this host cannot read is refused naming the host that saved it (``taken_on``)."""
    path, expected = record.get("memory_file"), record.get("memory_sha256")
    if not path:
        return {}
    if not os.path.isfile(path) or not os.access(path, os.R_OK):
        raise RecordMismatch(elsewhere_message(path, name, taken_on))
    found = sha256_file(path)
    if found == expected:
        return {"memory_sha256_checked": found}
    if not force:
        raise RecordMismatch(f"memory image {path} of snapshot {name!r} does not match the "
                            f"ledger (sha256 {found[:16]}..., recorded {str(expected)[:16]}...); "
                            "not restoring it (--force restores it anyway, and records that)")
    return {"forced": True, "memory_sha256_found": found, "memory_sha256_recorded": expected}


def branch_edits(plan: list[StepSpec], name: str, record: Record, svc: Services,
                 uuid: str) -> dict[str, Record]:
    """The snapshot's record with the fresh overlays of ``plan`` as its ``branches`` (so
    a later delete knows them), and the step that writes its metadata file so."""
    fresh = {s.params["device"]: s.params["overlay"] for s in plan
             if s.action == "overlay-create" and s.params.get("device")}
    if not fresh:
        return {}
    disks = [{**d, "branches": [*d.get("branches", []), fresh[d["device"]]]}
             if d["device"] in fresh else d for d in record["disks"]]
    new = {**record, "disks": disks}
    folder = svc.settings.domain_dir(uuid)
    at = max(n for n, s in enumerate(plan) if s.action == "overlay-create") + 1
    plan.insert(at, StepSpec("metadata-replace", str(metadata_path(folder, name)), {
        "dir": str(folder), "name": name, "record": new, "old_record": record}))
    return {name: new}


def _device(live: Live, disk: Record, under: bool = False) -> LiveDisk:
    """The live disk a recorded disk is, found by QMP device id and checked to be unchanged
    (``under``: an external disk may have other images on top by now)."""
    wanted = disk.get("qmp_device") or disk["device"]
    for live_disk in live.disks:
        if live_disk.device == wanted or live_disk.vdev == disk["device"]:
            on_top = disk["path"] if disk["type"] == "external" else disk["file"]
            if live_disk.path != on_top and not (under and disk["type"] == "external"):
                raise UsageError(f"disk {disk['device']!r} now writes to {live_disk.path}, not "
                                 f"{on_top} as at the snapshot (a later external snapshot?); "
                                 "reverting a running domain under an overlay is not supported: "
                                 "stop the domain, then revert it")
            if disk["type"] == "internal" and disk["name"] not in live_disk.snapshots:
                raise RecordMismatch(f"disk {disk['device']!r} ({live_disk.path}) has no snapshot "
                                    f"tag {disk['name']!r}; run 'xlsnap check'")
            return live_disk
    raise UsageError(f"the running domain has no disk {disk['device']!r} of the snapshot")


def _where(live: Live, domain: str) -> dict[str, Any]:
    return {"toolstack": live.toolstack, "socket": live.qmp_socket, "domain": domain,
            "was_running": live.was_running}


def vm_load_plan(record: Record, live: Live, after: str, safety: str,
                 domain: str) -> list[StepSpec]:
    """QEMU, memory inside qcow2: safety snapshot, ``snapshot-load``, resume, clean up."""
    disks = [_device(live, d) for d in record["disks"]]
    vmstate = next((d for d, r in zip(disks, record["disks"])
                    if r["device"] == record.get("vmstate_device")), disks[0])
    nodes = [d.node for d in disks]
    job = {"socket": live.qmp_socket, "vmstate": vmstate.node, "devices": nodes}
    where = _where(live, domain)
    return [
        StepSpec("domain-pause", domain, where),
        StepSpec("vm-safety-save", live.qmp_socket, {**job, "tag": safety}),
        StepSpec("vm-snapshot-load", live.qmp_socket,
                 {**job, "tag": record["name"], "safety": safety}),
        StepSpec("domain-unpause", domain, {**where, "resume": after == "running"}),
        StepSpec("vm-safety-delete", live.qmp_socket, {**job, "tag": safety}),
    ]


def restart_plan(record: Record, live: Live, after: str, safety: str, safety_file: str,
                 domain: str, svc: Services) -> list[StepSpec]:
    """QEMU, memory in a file or none: stop QEMU, revert the disks, start it again."""
    disks = [(r, _device(live, r, under=True)) for r in record["disks"]]
    memory = record.get("memory_file") if record.get("memory") == "yes" else None
    for path in filter(None, (safety_file, memory)):
        try:
            check_absolute(path)
        except UnsafePath as exc:
            raise UsageError(str(exc)) from None
    current = {d.device: (d.path, d.format) for _, d in disks}
    resume_argv = restart_argv(live.argv, current, incoming=True)
    fresh = {d.device: (r["file"], d.format) for r, d in disks if r["type"] == "internal"}
    overlays: list[StepSpec] = []
    for r, d in disks:          # the image in use stays, a leaf: the current branch is kept
        if r["type"] == "external":
            overlay = choose_overlay(r["file"], f"{record['name']}-revert-{safety[-8:]}",
                                     r["device"], None, svc.qemu_img)
            overlays.append(StepSpec("overlay-create", overlay, {
                "base": r["file"], "overlay": overlay, "device": r["device"],
                "base_format": svc.qemu_img.info(r["file"], force_share=True).format}))
            fresh[d.device] = (overlay, "qcow2")
    new_argv = restart_argv(live.argv, fresh, incoming=memory is not None,
                            paused=after == "paused")
    where = _where(live, domain)
    plan = [StepSpec("domain-pause", domain, where),
            StepSpec("memory-save", safety_file, {**where, "path": safety_file, "safety": True,
                                                  "memory_bytes": live.memory_bytes}),
            StepSpec("qemu-quit", live.qmp_socket, {"socket": live.qmp_socket, "pid": live.pid,
                                                    "resume_argv": resume_argv,
                                                    "resume_from": safety_file})]
    cleanup: list[StepSpec] = []
    plan += overlays
    for r, d in disks:
        if r["type"] == "internal":
            plan.append(StepSpec("safety-tag-create", d.path, {"path": d.path, "tag": safety}))
            cleanup.append(StepSpec("live-safety-tag-delete", d.path, {
                "socket": live.qmp_socket, "device": d.device, "tag": safety}))
    plan += [StepSpec("internal-snapshot-apply", d.path,
                      {"path": d.path, "tag": r["name"], "safety": safety})
             for r, d in disks if r["type"] == "internal"]
    plan.append(StepSpec("qemu-launch", live.qmp_socket,
                         {"socket": live.qmp_socket, "argv": new_argv}))
    if memory is not None:
        plan.append(StepSpec("memory-load", memory, {"socket": live.qmp_socket, "path": memory}))
        plan.append(StepSpec("domain-unpause", domain, {**where, "resume": after == "running"}))
    return plan + cleanup + [StepSpec("memory-safety-remove", safety_file,
                                      {"path": safety_file})]
