"""``snapshot-create`` of a stopped domain: internal qcow2 tags and external overlays.

Everything is checked before the first side effect; then each disk's snapshot, the
config rewrite (external) and the metadata file are steps that are undone in
reverse if a later one fails.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, NamedTuple

from commands.config.disk_spec import DiskSpec, format_disk_spec
from commands.config.snapshot_cfg import DiskRequest, SnapshotConfig, load_snapshot_cfg
from commands.config.xlcfg import quote_string, replace_spans
from commands.domains import DiskEntry, Domain
from commands.actions import StepSpec
from commands.backing import with_base_fingerprints
from commands.drivers.qemu_img import ImageInfo, QemuImg, QemuImgError
from commands.corrupt_images import after_failure, refuse_corrupt
from commands.errors import OperationFailed, UsageError
from commands.existing import image_error
from commands.files import sha256_bytes, sha256_file
from commands.messages import CreateSnapshot
from commands.metadata import metadata_path
from commands.operation import Operation
from commands.services import Services
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
    (``commands.create_live``); a stopped one gets its disks snapshotted with qemu-img.

    Example: ``create_snapshot(CreateSnapshot("web", name="before-upgrade"), svc)``.
    """
    target = svc.resolve(cmd.domain)
    snapcfg = load_snapshot_cfg(cmd.config_file) if cmd.config_file else None
    name = check_snapshot_name(_choose_name(cmd.name, snapcfg))
    if target.live is not None:
        from commands.create_live import create_live_snapshot

        return create_live_snapshot(cmd, svc, target, snapcfg, name)
    domain = target.domain
    ledger = svc.ledger_for(domain)
    ledger.check_idle()
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
    }
    plan = [_disk_step(p, name) for p in plans]
    externals = [p for p in plans if p.kind == "external"]
    if externals:
        step = config_rewrite_step(domain, [(p.entry, p.overlay or "") for p in externals],
                                   name)
        record["config"] = {k: step.params[k] for k in
                            ("path", "backup", "sha256_before", "sha256_after")}
        plan.append(step)
    plan.append(StepSpec("metadata-write", str(metadata_path(domain_dir, name)),
                         {"dir": str(domain_dir), "name": name, "record": record}))
    op = Operation(svc.app, ledger, svc.actor, svc.tools)
    op.start("create", name, {"domain": domain.name, "config_file": cmd.config_file,
                              "toolstack": "offline", "record": record}, plan)
    try:
        op.run(plan)
    except OperationFailed as exc:
        raise after_failure(exc, [p.path for p in plans], svc.qemu_img) from None
    record = with_base_fingerprints(record)
    op.complete(lambda lg: lg.record_taken(op.operation_id, name, record, svc.actor))
    svc.sync()
    return record


def _choose_name(given: str | None, snapcfg: SnapshotConfig | None) -> str:
    """``-n`` first, then the config's name, else epoch seconds; an empty name stays empty."""
    if given is not None:
        return given
    if snapcfg is not None and snapcfg.name is not None:
        return snapcfg.name
    return str(int(time.time()))


def _check_memory(domain: Domain, snapcfg: SnapshotConfig | None) -> None:
    memory = snapcfg.memory if snapcfg else None
    if memory not in (None, "no"):
        raise UsageError(
            f"domain {domain.name!r} is not running: it has no memory state to save "
            f"(memory={memory!r}); use memory=\"no\" for a disk snapshot, or start it"
        )


def chosen_disks(
    domain: Domain, snapcfg: SnapshotConfig | None
) -> list[tuple[int, DiskEntry, DiskRequest | None, str]]:
    """The disks a snapshot covers, as ``(index, entry, request, kind)``.

    Every writable disk, unless the config lists disks and sets no type (then just
    those); kind is the disk's own ``type=``, external when it names an overlay,
    else the config's type, else internal.
    """
    default_kind = snapcfg.type if snapcfg and snapcfg.type else "internal"
    requests = {d.vdev: d for d in snapcfg.disks} if snapcfg else {}
    listed_only = bool(requests) and snapcfg is not None and snapcfg.type is None
    for vdev in requests:
        domain.disk(vdev)
    chosen: list[tuple[int, DiskEntry, DiskRequest | None, str]] = []
    for index, entry in enumerate(domain.disks):
        spec = entry.spec
        request = requests.get(spec.vdev)
        if not spec.writable or not spec.target:
            if request is not None:
                raise UsageError(f"disk {spec.vdev!r} of domain {domain.name!r} is read-only "
                                 "or empty and cannot be snapshotted")
            continue
        if listed_only and request is None:
            continue  # a config that lists disks and sets no type snapshots just those
        kind = (request.kind if request and request.kind else None) or (
            "external" if request and request.overlay else default_kind)
        chosen.append((index, entry, request, kind))
    if not chosen:
        raise UsageError(f"domain {domain.name!r} has no writable disk to snapshot")
    return chosen


def check_distinct_overlays(overlays: list[str | None]) -> None:
    """Refuse a plan in which two disks would get the same overlay file."""
    named = [o for o in overlays if o]
    if len(set(named)) != len(named):
        raise UsageError("two disks would share one overlay file")


def plan_disks(
    domain: Domain, snapcfg: SnapshotConfig | None, name: str, qemu_img: QemuImg
) -> list[DiskPlan]:
    """Decide and check what happens to each disk; raises ``UsageError`` on bad input."""
    plans: list[DiskPlan] = []
    for _, entry, request, kind in chosen_disks(domain, snapcfg):
        info = _inspect(domain, entry.spec, qemu_img)
        if kind == "internal":
            plans.append(_plan_internal(domain, entry, info, name))
        else:
            overlay = request.overlay if request and request.overlay else None
            plans.append(_plan_external(domain, entry, info, name, overlay))
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
    domain: Domain, entry: DiskEntry, info: ImageInfo, name: str, overlay: str | None
) -> DiskPlan:
    overlay = choose_overlay(info.path, name, entry.spec.vdev, overlay)
    return DiskPlan(entry, "external", info.path, info, overlay)


def choose_overlay(base: str, name: str, vdev: str, requested: str | None) -> str:
    """The overlay path for a disk (the requested one, else ``<stem>.<name>.qcow2`` beside
    the base), checked: absolute, not there yet, in an existing folder."""
    overlay = requested or str(Path(base).with_name(f"{Path(base).stem}.{name}.qcow2"))
    if not os.path.isabs(overlay):
        raise UsageError(f"overlay {overlay!r} for disk {vdev!r} is not an absolute path")
    if os.path.lexists(overlay):
        raise UsageError(f"overlay {overlay} for disk {vdev!r} exists already")
    if not os.path.isdir(os.path.dirname(overlay)):
        raise UsageError(f"folder of overlay {overlay} for disk {vdev!r} does not exist")
    return overlay


def _disk_step(plan: DiskPlan, name: str) -> StepSpec:
    if plan.kind == "internal":
        return StepSpec("internal-snapshot-create", plan.path, {"path": plan.path, "tag": name})
    overlay = plan.overlay or ""
    return StepSpec("overlay-create", overlay, {"base": plan.path, "overlay": overlay,
                                                "base_format": plan.info.format})


def config_rewrite_step(domain: Domain, externals: list[tuple[DiskEntry, str]],
                        name: str) -> StepSpec:
    """Point the domain's disks at their overlays; the old config is kept beside it."""
    path, config = domain.config_path, domain.config
    assert path is not None and config is not None
    old = config.text
    replacements: dict[tuple[int, int], str] = {}
    for entry, overlay in externals:
        spec = entry.spec
        new_spec = DiskSpec(vdev=spec.vdev, target=overlay, format="qcow2",
                            access=spec.access, devtype=spec.devtype,
                            backendtype=spec.backendtype, script=spec.script, extra=spec.extra)
        assert entry.span is not None
        start, end = entry.span
        quote = old[start] if old[start] in "'\"" else '"'
        replacements[(start, end)] = quote_string(format_disk_spec(new_spec), quote)
    new = replace_spans(old, replacements)
    backup = path.with_name(f"{path.name}.before-{name}")
    if os.path.lexists(backup):
        raise UsageError(f"{backup} exists already; move it away first")
    return StepSpec("config-rewrite", str(path), {
        "path": str(path), "backup": str(backup), "new_text": new,
        "sha256_before": sha256_file(path), "sha256_after": sha256_bytes(new.encode()),
        "mode": os.stat(path).st_mode & 0o777,
    })
