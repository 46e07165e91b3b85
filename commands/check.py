"""``check``: compare a domain's ledger with its disks and files; list every difference."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from commands.drivers.qemu_img import QemuImg, QemuImgError
from commands.files import sha256_file
from commands.metadata import metadata_path
from commands.services import Services
from ledger.domain import DomainLedger

Difference = dict[str, Any]


def check_domain(svc: Services, domain_name: str) -> list[Difference]:
    """Every way the disks and files disagree with the ledger (empty when they agree)."""
    domain = svc.resolve(domain_name).domain
    ledger = svc.ledger_for(domain)
    q = svc.qemu_img
    diffs: list[Difference] = []
    if ledger.in_flight is not None:
        diffs.append({"kind": "operation-in-flight",
                      "operation_id": ledger.in_flight["operation_id"],
                      "detail": f"{ledger.in_flight['kind']} "
                                f"{ledger.in_flight.get('snapshot_name')!r}"})
    known: dict[str, set[str]] = _planned_tags(ledger)
    for name, entry in ledger.entries.items():
        diffs += _check_entry(q, name, entry, known)
        diffs += _check_memory(name, entry["record"])
        if not metadata_path(svc.settings.domain_dir(domain.uuid), name).exists():
            diffs.append({"kind": "metadata-missing", "snapshot": name})
    images = {e.spec.target for e in domain.disks if e.spec.target and e.spec.format == "qcow2"}
    for path in sorted(images | set(known)):
        diffs += _foreign_tags(q, path, known.get(path, set()))
    diffs += _foreign_metadata(svc.settings.domain_dir(domain.uuid), ledger)
    return diffs


def _check_entry(q: QemuImg, name: str, entry: dict[str, Any],
                 known: dict[str, set[str]]) -> list[Difference]:
    diffs: list[Difference] = []
    removed = set(entry.get("removed_devices", []))
    for disk in entry["record"]["disks"]:
        where = {"snapshot": name, "device": disk["device"], "path": disk["file"]}
        if disk["type"] == "internal":
            if disk["device"] in removed:
                continue
            known.setdefault(disk["file"], set()).add(disk["name"])
            count = _tag_count(q, disk["file"], disk["name"])
            if count is None:
                diffs.append({"kind": "image-missing", **where})
            elif count != 1:
                diffs.append({"kind": "tag-missing" if count == 0 else "tag-duplicated",
                              "count": count, **where})
            continue
        overlay = disk["path"]
        if not os.path.exists(disk["file"]):
            diffs.append({"kind": "image-missing", **where})
        if not os.path.exists(overlay):
            diffs.append({"kind": "overlay-missing", "overlay": overlay, **where})
            continue
        try:
            backing = q.info(overlay, force_share=True).backing_file
        except QemuImgError as exc:
            diffs.append({"kind": "overlay-unreadable", "overlay": overlay,
                          "detail": str(exc), **where})
            continue
        if backing != disk["file"]:
            diffs.append({"kind": "overlay-foreign", "overlay": overlay, "backing": backing,
                          **where})
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


def _tag_count(q: QemuImg, path: str, tag: str) -> int | None:
    if not os.path.exists(path):
        return None
    return len(q.info(path, force_share=True).find(tag))


def _foreign_tags(q: QemuImg, path: str, known: set[str]) -> list[Difference]:
    if not os.path.exists(path):
        return []
    try:
        info = q.info(path, force_share=True)
    except QemuImgError:
        return []
    return [{"kind": "foreign-tag", "path": path, "tag": t.name, "id": t.id}
            for t in info.tags if t.name not in known]


def _foreign_metadata(folder: Path, ledger: DomainLedger) -> list[Difference]:
    if not folder.is_dir():
        return []
    expected = {metadata_path(folder, n).name for n in ledger.entries}
    return [{"kind": "metadata-foreign", "path": str(p)}
            for p in sorted(folder.glob("snapshotdata-*.libxl-json")) if p.name not in expected]
