"""``snapshot-create`` of a stopped domain: internal qcow2 tags and external overlays.

Everything is checked before the first side effect; then each disk's snapshot, the
config rewrite (external) and the metadata file are steps that are undone in
reverse if a later one fails.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from commands.config.disk_spec import DiskSpec
from commands.config.snapshot_cfg import SnapshotConfig, load_snapshot_cfg
from commands.config.domains import DiskEntry, Domain
from commands.engine.actions import StepSpec
from commands.engine.base_fingerprints import with_base_fingerprints
from commands.drivers.qemu_img import ImageInfo, QemuImg, QemuImgError
from commands.planning.corrupt_images import after_failure, refuse_corrupt
from commands.errors import OperationFailed, UsageError
from commands.planning.recorded_disks import image_error
from commands.handlers.messages import CreateSnapshot
from commands.planning.config_rewrite import config_rewrite_step
from commands.planning.snapshot_disks import (
    check_distinct_overlays,
    check_outside_state,
    choose_overlay,
    chosen_disks,
)
from commands.state.snapshot_metadata import metadata_path
from commands.engine.operation import Operation
from commands.handlers.operation_flow import carry_out
from commands.bootstrap import Services
from ledger.domain import DomainLedger
from ledger.names import check_snapshot_name

STOPPED_STATE = {"state": "shutoff", "running": False, "blocked": False, "paused": False,
                 "shutdown": True, "dying": False}


class DiskPlan(NamedTuple):
    """What happens to one disk: an internal tag in ``path``, or an overlay on top of it."""

    entry: DiskEntry
    kind: str
    path: str
    info: ImageInfo
    overlay: str | None = None

    @property
    def vdev(self) -> str:
        return self.entry.spec.vdev

    def record(self, name: str) -> dict[str, Any]:
        """The disk's part of the libxl-json record (the seed's field names)."""
        if self.kind == "internal":
            return {"device": self.vdev, "name": name, "file": self.path, "format": "qcow2",
                    "path": self.path, "type": "internal"}
        return {"device": self.vdev, "name": name, "file": self.path,
                "format": self.info.format, "path": self.overlay, "type": "external"}


def create_snapshot(cmd: CreateSnapshot, svc: Services) -> dict[str, Any]:
    """Take a snapshot; returns its libxl-json record.

    A running domain (found by the ``xen`` or ``qemu`` toolstack) gets a live snapshot
    (``commands.handlers.create_live``); a stopped one gets its disks snapshotted with qemu-img.

    Example: ``create_snapshot(CreateSnapshot("web", name="before-upgrade"), svc)``.
    """
    target = svc.resolve(cmd.domain)
    snapcfg = load_snapshot_cfg(cmd.config_file) if cmd.config_file else None
    if cmd.description is not None:
        snapcfg = (snapcfg or SnapshotConfig(None, "", None, None, None, ()))._replace(
            description=cmd.description)
    check_outside_state(snapcfg, svc.settings.home, svc.settings.ledger)
    chosen = _choose_name(cmd.name, snapcfg)
    name = check_snapshot_name(chosen if chosen is not None
                               else _default_name(svc.ledger_for(target.domain), svc))
    if target.live is not None:
        # imported here: a stopped domain's snapshot does not load the live machinery
        from commands.handlers.create_live import create_live_snapshot

        return create_live_snapshot(cmd, svc, target, snapcfg, name)
    domain = target.domain
    ledger = svc.idle_ledger_for(domain)
    ledger.check_new_name(name)
    _check_memory(domain, snapcfg)
    plans = plan_disks(domain, snapcfg, name, svc.qemu_img)
    domain_dir = svc.settings.domain_dir(domain.uuid)
    if metadata_path(domain_dir, name).exists():
        raise UsageError(f"{metadata_path(domain_dir, name)} exists already; remove it or "
                         "choose another name")
    kinds = {p.kind for p in plans}
    record: dict[str, Any] = {
        "name": name,
        "description": snapcfg.description if snapcfg else "",
        "creation_time": int(time.time()),
        "claimed_creation_time": snapcfg.creation_time if snapcfg else None,
        "memory": "no",
        "type": kinds.pop() if len(kinds) == 1 else "mixed",
        **STOPPED_STATE,
        "disks": [p.record(name) for p in plans],
        "domain": {"name": domain.name, "uuid": domain.uuid},
        "toolstack": "offline",
        **(cmd.extra or {}),
    }
    plan = [_disk_step(p, name) for p in plans]
    externals = [p for p in plans if p.kind == "external"]
    if externals:
        step = config_rewrite_step(domain, [(p.entry, p.overlay or "") for p in externals],
                                   name)
        record["config"] = {k: step.params[k] for k in
                            ("path", "link", "backup", "sha256_before", "sha256_after")}
        plan.append(step)
    plan.append(StepSpec("metadata-write", str(metadata_path(domain_dir, name)),
                         {"dir": str(domain_dir), "name": name, "record": record}))
    def run(op: Operation, plan: list[StepSpec]) -> None:
        try:
            op.run(plan)
        except OperationFailed as exc:
            raise after_failure(exc, [p.path for p in plans], svc.qemu_img) from None

    taken: dict[str, Any] = {}

    def outcome(op: Operation) -> Callable[[DomainLedger], None]:
        taken.update(with_base_fingerprints(record))
        return lambda lg: lg.record_taken(op.operation_id, name, taken, svc.actor)

    carry_out(svc, ledger, "create", name, {"domain": domain.name,
                                            "config_file": cmd.config_file,
                                            "toolstack": "offline", "record": record},
              plan, outcome, run=run)
    return taken


def _choose_name(given: str | None, snapcfg: SnapshotConfig | None) -> str | None:
    """``-n`` first, then the config's name; None for the default. Empty stays empty."""
    if given is not None:
        return given
    if snapcfg is not None and snapcfg.name is not None:
        return snapcfg.name
    return None


def _default_name(ledger: DomainLedger, svc: Services) -> str:
    """Epoch seconds, as the seed has it; ``-2``, ``-3``... when that second's is taken."""
    base = str(int(time.time()))
    for name in (base, *(f"{base}-{k}" for k in range(2, 1000))):
        if name not in ledger.entries:
            if name != base:
                svc.say(f"{base} is taken; this snapshot is named {name}")
            return name
    raise UsageError(f"every default name from {base} to {base}-999 is taken; use -n NAME")


def _check_memory(domain: Domain, snapcfg: SnapshotConfig | None) -> None:
    memory = snapcfg.memory if snapcfg else None
    if memory not in (None, "no"):
        raise UsageError(
            f"domain {domain.name!r} is not running: it has no memory state to save "
            f"(memory={memory!r}); use memory=\"no\" for a disk snapshot, or start it"
        )


def plan_disks(
    domain: Domain, snapcfg: SnapshotConfig | None, name: str, qemu_img: QemuImg
) -> list[DiskPlan]:
    """Decide and check what happens to each disk; raises ``UsageError`` on bad input."""
    plans: list[DiskPlan] = []
    chosen = chosen_disks(domain, snapcfg)
    qemu_img.read_ahead([entry.spec.target for _, entry, _, _ in chosen
                         if entry.spec.target and os.path.isabs(entry.spec.target)])
    for _, entry, request, kind in chosen:
        info = _inspect(domain, entry.spec, qemu_img)
        if kind == "internal":
            plans.append(_plan_internal(domain, entry, info, name))
        else:
            overlay = request.overlay if request and request.overlay else None
            plans.append(_plan_external(domain, entry, info, name, overlay, qemu_img))
    check_distinct_overlays([p.overlay for p in plans])
    return plans


def _inspect(domain: Domain, spec: DiskSpec, qemu_img: QemuImg) -> ImageInfo:
    path = spec.target or ""
    if not os.path.isabs(path):
        raise UsageError(f"disk {spec.vdev!r} of domain {domain.name!r}: path {path!r} is "
                         "not absolute")
    if not os.path.exists(path):
        raise UsageError(f"disk {spec.vdev!r} of domain {domain.name!r}: image {path} is missing")
    try:
        info = qemu_img.info(path, force_share=True)
    except QemuImgError as exc:
        raise image_error(spec.vdev, path, exc) from None
    if info.format != spec.format:
        raise UsageError(f"disk {spec.vdev!r}: config says format {spec.format} but {path} "
                         f"is {info.format}")
    refuse_corrupt(spec.vdev, path, info.corrupt)
    return info


def _plan_internal(domain: Domain, entry: DiskEntry, info: ImageInfo, name: str) -> DiskPlan:
    spec = entry.spec
    if info.format != "qcow2":
        raise UsageError(
            f"disk {spec.vdev!r} ({info.path}) is {info.format}: internal snapshots need "
            "qcow2; take an external snapshot of it (type=\"external\" in a snapshot config)"
        )
    if info.find(name):
        raise UsageError(f"disk {spec.vdev!r} ({info.path}) already has a snapshot tag "
                         f"{name!r} that the ledger does not know; choose another name")
    return DiskPlan(entry, "internal", info.path, info)


def _plan_external(
    domain: Domain, entry: DiskEntry, info: ImageInfo, name: str, overlay: str | None,
    qemu_img: QemuImg,
) -> DiskPlan:
    overlay = choose_overlay(info.path, name, entry.spec.vdev, overlay, qemu_img)
    return DiskPlan(entry, "external", info.path, info, overlay)


def _disk_step(plan: DiskPlan, name: str) -> StepSpec:
    if plan.kind == "internal":
        return StepSpec("internal-snapshot-create", plan.path, {"path": plan.path, "tag": name})
    overlay = plan.overlay or ""
    return StepSpec("overlay-create", overlay, {"base": plan.path, "overlay": overlay,
                                                "base_format": plan.info.format})
