"""``check``: compare a domain's ledger with its disks and files; list every difference."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from commands.engine.base_fingerprints import base_changes, latest_fingerprints
from commands.drivers.qemu_img import ImageInfo, QemuImg, QemuImgError
from commands.state.atomic_files import sha256_file
from commands.state.snapshot_metadata import metadata_path
from commands.bootstrap import Services
from ledger.domain import DomainLedger

Difference = dict[str, Any]


def check_domain(svc: Services, domain_name: str) -> list[Difference]:
    """Every way the disks and files disagree with the ledger (empty when they agree)."""
    domain = svc.resolve(domain_name).domain
    ledger = svc.ledger_for(domain)
    images = _Images(svc.qemu_img)
    diffs: list[Difference] = []
    if ledger.in_flight is not None:
        diffs.append({"kind": "operation-in-flight",
                      "operation_id": ledger.in_flight["operation_id"],
                      "detail": f"{ledger.in_flight['kind']} "
                                f"{ledger.in_flight.get('snapshot_name')!r}"})
    known: dict[str, set[str]] = _planned_tags(ledger)
    recorded: set[str] = set()
    for name, entry in ledger.entries.items():
        diffs += _check_entry(images, name, entry, known)
        diffs += _check_memory(name, entry["record"])
        if not metadata_path(svc.settings.domain_dir(domain.uuid), name).exists():
            diffs.append({"kind": "metadata-missing", "snapshot": name})
        for disk in entry["record"]["disks"]:
            recorded.update([disk["file"], disk["path"]])
    images_now = {e.spec.target for e in domain.disks if e.spec.target and e.spec.format == "qcow2"}
    for path in sorted(images_now | recorded | set(known)):
        diffs += images.problems(path)
        if path in images_now or path in known:
            diffs += _foreign_tags(images, path, known.get(path, set()))
    diffs += base_changes(ledger.entries, latest_fingerprints(svc.app.events.get(ledger.id)))
    diffs += _foreign_metadata(svc.settings.domain_dir(domain.uuid), ledger)
    return diffs


class _Images:
    """``qemu-img info -U`` of each image, read once; what is wrong with one, by name."""

    def __init__(self, q: QemuImg) -> None:
        self.q = q
        self._info: dict[str, ImageInfo | QemuImgError | None] = {}

    def info(self, path: str) -> ImageInfo | None:
        """The image's facts; None when it is missing, unreadable or marked corrupt."""
        found = self._read(path)
        return found if isinstance(found, ImageInfo) and not found.corrupt else None

    def _read(self, path: str) -> ImageInfo | QemuImgError | None:
        if path not in self._info:
            if not os.path.exists(path):
                self._info[path] = None
            else:
                try:
                    self._info[path] = self.q.info(path, force_share=True)
                except QemuImgError as exc:
                    self._info[path] = exc
        return self._info[path]

    def problems(self, path: str) -> list[Difference]:
        """``unreadable-image``, ``corrupt-image`` or ``missing-backing-file`` (else none)."""
        found = self._read(path)
        if isinstance(found, QemuImgError):
            return [{"kind": "unreadable-image", "path": path, "detail": str(found)}]
        if found is None:
            return []
        if found.corrupt:
            return [{"kind": "corrupt-image", "path": path,
                     "detail": "qcow2 corrupt flag set: 'qemu-img check -r all' may repair it"}]
        backing = found.backing_file
        if backing and not os.path.exists(backing):
            return [{"kind": "missing-backing-file", "path": path, "backing": backing}]
        return []


def _check_entry(images: _Images, name: str, entry: dict[str, Any],
                 known: dict[str, set[str]]) -> list[Difference]:
    diffs: list[Difference] = []
    removed = set(entry.get("removed_devices", []))
    for disk in entry["record"]["disks"]:
        where = {"snapshot": name, "device": disk["device"], "path": disk["file"]}
        if disk["type"] == "internal":
            if disk["device"] in removed:
                continue
            known.setdefault(disk["file"], set()).add(disk["name"])
            if not os.path.exists(disk["file"]):
                diffs.append({"kind": "image-missing", **where})
                continue
            info = images.info(disk["file"])
            count = None if info is None else len(info.find(disk["name"]))
            if count is not None and count != 1:   # an unreadable image is reported as such
                diffs.append({"kind": "tag-missing" if count == 0 else "tag-duplicated",
                              "count": count, **where})
            continue
        overlay = disk["path"]
        if not os.path.exists(disk["file"]):
            diffs.append({"kind": "image-missing", **where})
        if not os.path.exists(overlay):
            diffs.append({"kind": "overlay-missing", "overlay": overlay, **where})
            continue
        info = images.info(overlay)
        if info is not None and info.backing_file != disk["file"]:
            diffs.append({"kind": "overlay-foreign", "overlay": overlay,
                          "backing": info.backing_file, **where})
    return diffs


def _planned_tags(ledger: DomainLedger) -> dict[str, set[str]]:
    """Tags the operation in flight may have made: reported through it, not as foreign."""
    planned: dict[str, set[str]] = {}
    if ledger.in_flight is not None:
        for step in ledger.in_flight["details"].get("plan", []):
            params = step.get("params", {})
            if "tag" in params and "path" in params:
                planned.setdefault(params["path"], set()).add(params["tag"])
    return planned


def _check_memory(name: str, record: dict[str, Any]) -> list[Difference]:
    path, digest = record.get("memory_file"), record.get("memory_sha256")
    if not path or not digest:
        return []
    if not os.path.exists(path):
        return [{"kind": "memory-missing", "snapshot": name, "path": path}]
    if sha256_file(path) != digest:
        return [{"kind": "memory-altered", "snapshot": name, "path": path}]
    return []


def _foreign_tags(images: _Images, path: str, known: set[str]) -> list[Difference]:
    info = images.info(path)
    if info is None:
        return []
    return [{"kind": "foreign-tag", "path": path, "tag": t.name, "id": t.id}
            for t in info.tags if t.name not in known]


def _foreign_metadata(folder: Path, ledger: DomainLedger) -> list[Difference]:
    if not folder.is_dir():
        return []
    expected = {metadata_path(folder, n).name for n in ledger.entries}
    return [{"kind": "metadata-foreign", "path": str(p)}
            for p in sorted(folder.glob("snapshotdata-*.libxl-json")) if p.name not in expected]
