"""``snapshot-create`` of a running domain: memory state and live disks, on QEMU and Xen."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from collections.abc import Callable
from typing import Any, NamedTuple

from commands.engine.actions import StepSpec
from commands.config.snapshot_cfg import DiskRequest, SnapshotConfig
from commands.planning.config_rewrite import config_rewrite_step
from commands.planning.snapshot_disks import (
    check_distinct_overlays,
    choose_overlay,
    chosen_disks,
)
from commands.config.domains import DiskEntry, Domain
from commands.drivers.qmp import QmpError
from commands.errors import UsageError
from commands.state.private_folders import check_secret_dir
from commands.engine.resume_guard import run_guarded
from commands.engine.base_fingerprints import with_base_fingerprints
from commands.state.memory_images import with_memory_digest
from commands.handlers.messages import CreateSnapshot
from commands.state.snapshot_metadata import metadata_path, write_metadata
from commands.engine.operation import Operation
from commands.handlers.operation_flow import carry_out
from commands.bootstrap import Services
from commands.toolstacks.base import Live, LiveDisk, Target
from commands.toolstacks.select import rules_of
from ledger.domain import DomainLedger

#: States in which a running domain's snapshot can be taken.
SNAPSHOTTABLE = ("running", "blocked", "paused")


class LivePlan(NamedTuple):
    """One live disk's part: an internal tag, or an overlay that becomes the live disk."""

    entry: DiskEntry
    disk: LiveDisk
    kind: str
    overlay: str | None = None

    def record(self, name: str) -> dict[str, Any]:
        base = {"device": self.entry.spec.vdev, "name": name, "file": self.disk.path,
                "qmp_device": self.disk.device, "qmp_node": self.disk.node,
                **({"qmp_via": self.disk.via} if self.disk.via else {})}
        if self.kind == "internal":
            return {**base, "format": "qcow2", "path": self.disk.path, "type": "internal"}
        return {**base, "format": self.disk.format, "path": self.overlay, "type": "external"}


def create_live_snapshot(cmd: CreateSnapshot, svc: Services, target: Target,
                         snapcfg: SnapshotConfig | None, name: str) -> dict[str, Any]:
    """Take a snapshot of a running domain; returns its record.

    With memory (the default, as in the seed): the guest is paused, its memory saved, all
    its disks snapshotted at once, and it is resumed: on QEMU ``stop`` + ``snapshot-save``
    (internal: memory inside the qcow2 image) or ``stop`` + one ``transaction`` +
    ``migrate`` to ``<home>/<uuid>/<name>.save`` (external); on Xen ``xl save -p``
    to that file + one ``transaction`` on the device model's QMP socket. Disk-only
    (``memory="no"`` or ``--disk-only``): one ``transaction`` without pausing, recorded as
    crash-consistent. The domain is resumed on every failure path: the pause step's undo
    does it, and so does ``resume_after_failure`` if anything escapes the undo.
    """
    rules = rules_of(target.toolstack)
    target = rules.with_live_disks(target, svc.tools.qmp)
    domain, live = target.domain, target.live
    assert live is not None
    ledger = svc.idle_ledger_for(domain)
    ledger.check_new_name(name)
    if live.state not in SNAPSHOTTABLE:
        raise UsageError(f"domain {domain.name!r} is {live.state}: only a running or paused "
                         "domain can be snapshotted live")
    memory = _memory_choice(cmd, snapcfg)
    if memory != "no":
        rules.check_memory_snapshot(domain.name, live)
    plans = plan_live_disks(domain, live, snapcfg, name)
    domain_dir = svc.settings.domain_dir(domain.uuid)
    if metadata_path(domain_dir, name).exists():
        raise UsageError(f"{metadata_path(domain_dir, name)} exists already; remove it or "
                         "choose another name")
    memory_file = _memory_file(svc, domain, live, plans, memory, name)
    kinds = {p.kind for p in plans}
    record = _record(cmd, snapcfg, name, domain, live, plans, memory != "no", memory_file)
    plan = _steps(live, plans, name, memory != "no", memory_file, domain)
    externals = [p for p in plans if p.kind == "external"]
    if externals and domain.config_path is not None and all(p.entry.span for p in externals):
        step = config_rewrite_step(domain, [(p.entry, p.overlay or "") for p in externals], name)
        record["config"] = {k: step.params[k] for k in
                            ("path", "link", "backup", "sha256_before", "sha256_after")}
        plan.append(step)
    plan.append(StepSpec("metadata-write", str(metadata_path(domain_dir, name)),
                         {"dir": str(domain_dir), "name": name, "record": record}))
    svc.say(f"plan: {', '.join(s.action for s in plan)} ({', '.join(sorted(kinds))})")
    final: dict[str, Any] = {}
    inside = record.get("memory_format") == "qcow2-vmstate"

    def outcome(op: Operation) -> Callable[[DomainLedger], None]:
        final.update(with_base_fingerprints(dict(with_memory_digest(record))))
        if inside:
            final["memory_size"] = _vm_state_size(svc, live, plans[0].disk.device, name)
        return lambda lg: lg.record_taken(op.operation_id, name, final, svc.actor)

    def then(op: Operation) -> None:
        if inside:  # the metadata file follows the ledger's record (now with the size)
            write_metadata(domain_dir, name, final)

    carry_out(svc, ledger, "create", name, {"domain": domain.name,
                                            "config_file": cmd.config_file,
                                            "toolstack": live.toolstack, "record": record},
              plan, outcome, run=lambda op, plan: run_guarded(op, plan, live), then=then)
    return final


def _memory_choice(cmd: CreateSnapshot, snapcfg: SnapshotConfig | None) -> str:
    """``yes`` (default for a running domain), ``no``, or the memory image's path."""
    memory = snapcfg.memory if snapcfg else None
    if cmd.disk_only:
        if memory not in (None, "no"):
            raise UsageError(f"--disk-only contradicts memory={memory!r} in the snapshot config")
        return "no"
    return memory or "yes"


def plan_live_disks(domain: Domain, live: Live, snapcfg: SnapshotConfig | None,
                    name: str) -> list[LivePlan]:
    """What happens to each live disk; raises ``UsageError`` on anything that cannot work."""
    # Matched by vdev, not by position: a toolstack may leave out disks it does not
    # serve (a Xen domain's read-only cdrom), which no snapshot covers anyway.
    by_vdev = {d.vdev: d for d in live.disks}
    plans = []
    for _, entry, request, kind in chosen_disks(domain, snapcfg):
        disk = by_vdev.get(entry.spec.vdev)
        if disk is None:
            raise UsageError(f"disk {entry.spec.vdev!r} of domain {domain.name!r} is not open "
                             "in its device model: it cannot be snapshotted live")
        plans.append(_plan_one(domain, live, entry, disk, kind, request, name))
    check_distinct_overlays([p.overlay for p in plans])
    return plans


def _plan_one(domain: Domain, live: Live, entry: DiskEntry, disk: LiveDisk, kind: str,
              request: DiskRequest | None, name: str) -> LivePlan:
    vdev = entry.spec.vdev
    if kind == "internal":
        if disk.format != "qcow2":
            raise UsageError(f"disk {vdev!r} ({disk.path}) is {disk.format}: internal snapshots "
                             "need qcow2; take an external snapshot of it (type=\"external\")")
        if name in disk.snapshots:
            raise UsageError(f"disk {vdev!r} ({disk.path}) already has a snapshot tag {name!r} "
                             "that the ledger does not know; choose another name")
        return LivePlan(entry, disk, "internal")
    rules_of(live.toolstack).check_live_external(vdev, disk.path)
    overlay = choose_overlay(disk.path, name, vdev, request.overlay if request else None)
    return LivePlan(entry, disk, "external", overlay)


def _memory_file(svc: Services, domain: Domain, live: Live, plans: list[LivePlan],
                 memory: str, name: str) -> str | None:
    """The memory image's path, or None (disk-only, or QEMU's memory inside qcow2)."""
    if memory == "no":
        return None
    writable = {d.device for d in live.disks if d.writable and d.format != "empty"}
    left_out = writable - {p.disk.device for p in plans}
    if left_out:
        vdevs = [e.spec.vdev for e, d in zip(domain.disks, live.disks) if d.device in left_out]
        raise UsageError(f"a snapshot with memory must include every writable disk "
                         f"({', '.join(vdevs)} left out); use memory=\"no\" for a disk-only one")
    rules = rules_of(live.toolstack)
    inside = rules.vmstate_in_qcow2 and all(p.kind == "internal" for p in plans)
    if inside:
        if memory != "yes":
            raise UsageError(f"memory={memory!r}: QEMU keeps an internal snapshot's memory "
                             "inside the qcow2 image; use type=\"external\" to save it to a file")
        return None
    path = str(svc.settings.memory_image(domain.uuid, name)) if memory == "yes" else memory
    if os.path.lexists(path):
        raise UsageError(f"memory image {path} exists already; remove it or choose another name")
    if not os.path.isdir(os.path.dirname(path)) and memory != "yes":
        raise UsageError(f"folder of memory image {path} does not exist")
    if memory != "yes":  # a folder xlsnap did not create: checked, never re-moded
        check_secret_dir(Path(os.path.dirname(path)))
    rules.check_memory_path(path)
    return path


def _record(cmd: CreateSnapshot, snapcfg: SnapshotConfig | None, name: str, domain: Domain,
            live: Live, plans: list[LivePlan], memory: bool,
            memory_file: str | None) -> dict[str, Any]:
    kinds = {p.kind for p in plans}
    fmt = None if not memory else ("qcow2-vmstate" if memory_file is None else
                                   rules_of(live.toolstack).memory_format)
    state = live.state
    return {
        "name": name,
        "description": snapcfg.description if snapcfg else "",
        "creation_time": int(time.time()),
        "claimed_creation_time": snapcfg.creation_time if snapcfg else None,
        "memory": "yes" if memory else "no",
        "type": kinds.pop() if len(kinds) == 1 else "mixed",
        "state": state, "running": state == "running", "blocked": state == "blocked",
        "paused": state == "paused", "shutdown": False, "dying": False,
        "disks": [p.record(name) for p in plans],
        "domain": {"name": domain.name, "uuid": domain.uuid},
        "toolstack": live.toolstack,
        "crash_consistent": not memory and live.was_running,
        **(cmd.extra or {}),
        "memory_format": fmt,
        "memory_file": memory_file,
        "memory_sha256": None,
        "memory_size": None,
        "vmstate_device": plans[0].entry.spec.vdev if fmt == "qcow2-vmstate" else None,
        "domid": live.domid,
        "qemu_argv": rules_of(live.toolstack).restart_argv(live),
    }


def _steps(live: Live, plans: list[LivePlan], name: str, memory: bool,
           memory_file: str | None, domain: Domain) -> list[StepSpec]:
    rules = rules_of(live.toolstack)
    # xl save -p pauses the domain itself; on a paused domain its pause is one more (Xen
    # counts pauses), which the unpause step takes back.
    drop_pause = rules.save_pauses_domain and not live.was_running
    where = {"toolstack": live.toolstack, "socket": live.qmp_socket, "domain": domain.name,
             "was_running": live.was_running}
    internal = [p.disk.device for p in plans if p.kind == "internal"]
    external = [{"device": p.disk.device, "node": p.disk.node, "base": p.disk.path,
                 "overlay": p.overlay, "snapshot_node": _node_name(p.overlay or "")}
                for p in plans if p.kind == "external"]
    disks = StepSpec("live-external-snapshot" if external else "live-internal-snapshot",
                     live.qmp_socket, {"socket": live.qmp_socket, "tag": name,
                                       "internal": internal, "external": external})
    if not memory:
        return [disks]
    unpause = StepSpec("domain-unpause", domain.name,
                       {**where, "drop_pause": drop_pause})
    if memory_file is None:  # QEMU, every disk internal: RAM goes into the first disk
        nodes = [p.disk.node for p in plans]
        return [StepSpec("domain-pause", domain.name, where),
                StepSpec("vm-snapshot-save", live.qmp_socket,
                         {"socket": live.qmp_socket, "tag": name, "vmstate": nodes[0],
                          "devices": nodes}),
                unpause]
    save = StepSpec("memory-save", memory_file,
                    {**where, "path": memory_file, "memory_bytes": live.memory_bytes,
                     "drop_pause": drop_pause})
    if rules.save_pauses_domain:
        return [save, disks, unpause]
    # QEMU: the disks first. Both are taken while the guest is stopped, so the order
    # does not change what is saved; but a migration leaves QEMU's images inactive
    # until ``cont``, and an inactive image refuses an internal snapshot.
    return [StepSpec("domain-pause", domain.name, where), disks, save, unpause]


def _node_name(overlay: str) -> str:
    """A QMP node name for a new overlay: a letter, then a digest (at most 31 chars)."""
    return "xs" + hashlib.sha256(overlay.encode()).hexdigest()[:16]


def _vm_state_size(svc: Services, live: Live, device: str, name: str) -> int | None:
    """``vm-state-size`` of the new whole-VM snapshot, as QEMU reports it."""
    try:
        for dev in svc.tools.qmp(live.qmp_socket).execute("query-block"):
            if device in (dev.get("device"), (dev.get("inserted") or {}).get("node-name")):
                image = (dev.get("inserted") or {}).get("image") or {}
                for snap in image.get("snapshots", []):
                    if snap.get("name") == name:
                        return int(snap.get("vm-state-size", 0))
    except QmpError:
        return None
    return None
