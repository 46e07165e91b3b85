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
    (``commands.create_live``); a stopped one gets its disks snapshotted with qemu-img.

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


def chosen_disks(
    domain: Domain, snapcfg: SnapshotConfig | None
) -> list[tuple[int, DiskEntry, DiskRequest | None, str]]:
    """The disks a snapshot covers, as ``(index, entry, request, kind)``.

    Every writable disk, unless the config lists disks and sets no type (then just
    those); kind is the disk's own ``type=``, external when it names an overlay,
    else the config's type, else internal.
    """
    check_distinct_images(domain)
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


def check_distinct_images(domain: Domain) -> None:
    """Refuse a domain two of whose disks are one image (its path resolved: ``..``, links),
    unless both are read-only: a snapshot would tag it twice."""
    seen: dict[str, DiskSpec] = {}
    for entry in domain.disks:
        spec = entry.spec
        if not spec.target or not os.path.isabs(spec.target):
            continue
        real = os.path.realpath(spec.target)
        other = seen.get(real)
        if other is not None and (other.writable or spec.writable):
            raise UsageError(f"disks {other.vdev!r} and {spec.vdev!r} of domain {domain.name!r} "
                             f"are one image, {real}; a domain's disks must be distinct")
        seen.setdefault(real, spec)


def check_outside_state(snapcfg: SnapshotConfig | None, home: Path, ledger: str) -> None:
    """Refuse a snapshot config whose memory image or overlay would be in xlsnap's home
    (its own or another domain's folder) or be the ledger (links and ``..`` resolved)."""
    if snapcfg is None:
        return
    named = [("memory image", snapcfg.memory)] if snapcfg.memory not in (None, "yes", "no") \
        else []
    named += [(f"overlay of disk {d.vdev!r}", d.overlay) for d in snapcfg.disks if d.overlay]
    state = Path(os.path.realpath(home))
    ledger_real = os.path.realpath(ledger)
    for what, path in named:
        assert path is not None
        real = Path(os.path.realpath(os.path.dirname(path))) / os.path.basename(path)
        if real == state or state in real.parents:
            raise UsageError(f"{what} {path} is inside xlsnap's home {home}; choose a path "
                             "outside it (the home holds the ledger and every domain's files)")
        if str(real).startswith(ledger_real):
            raise UsageError(f"{what} {path} would overwrite the ledger {ledger}")


def check_distinct_overlays(overlays: list[str | None]) -> None:
    """Refuse a plan in which two disks would get the same overlay file."""
    named = [os.path.join(os.path.realpath(os.path.dirname(o)), os.path.basename(o))
             for o in overlays if o]
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


def choose_overlay(base: str, name: str, vdev: str, requested: str | None,
                   qemu_img: QemuImg | None = None) -> str:
    """The overlay path for a disk, checked: absolute, not there yet, in an existing folder.

    The requested one, else ``<stem>.<name>.qcow2`` beside ``base`` (the image on top),
    where ``stem`` is that of the image at the bottom of its backing chain: so the names
    of a chain of overlays do not grow (``a.e1``, ``a.e2``, not ``a.e1.e2``).
    """
    if not requested:
        try:
            bottom = (qemu_img or QemuImg()).chain_bottom(base)
        except (QemuImgError, ValueError):
            bottom = base
        requested = str(Path(base).with_name(f"{Path(bottom).stem}.{name}.qcow2"))
    overlay = requested
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
                        name: str, formats: dict[str, str] | None = None) -> StepSpec:
    """Point the domain's disks at their overlays; the old config is kept beside it.

    A config that is a symbolic link stays one: the file it points to is rewritten (in
    its own folder, atomically) and the backup kept beside that file.
    """
    link, config = domain.config_path, domain.config
    assert link is not None and config is not None
    path = Path(os.path.realpath(link))
    old = config.text
    replacements: dict[tuple[int, int], str] = {}
    for entry, overlay in externals:
        spec = entry.spec
        new_spec = DiskSpec(vdev=spec.vdev, target=overlay,
                            format=(formats or {}).get(spec.vdev, "qcow2"),
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
        "path": str(path), "link": str(link) if str(link) != str(path) else None,
        "backup": str(backup), "new_text": new,
        "sha256_before": sha256_file(path), "sha256_after": sha256_bytes(new.encode()),
        "mode": os.stat(path).st_mode & 0o777,
    })
