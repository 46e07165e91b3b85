"""Fingerprints of the images external snapshots stand on, to tell when one changed."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

Fingerprint = dict[str, int]


def fingerprint(path: str) -> Fingerprint | None:
    """``{size, mtime_ns, ino}`` of a file (following links), or None when it is gone."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ino": st.st_ino}


def fingerprints(*paths: str | None) -> dict[str, Fingerprint | None]:
    """``{path: fingerprint}`` of the images a step wrote (``None`` paths left out): what a
    step's result or probe carries under ``fingerprints``."""
    return {p: fingerprint(p) for p in paths if p}


def with_base_fingerprints(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` whose external disks carry their base's fingerprint (taken now if not yet).

    When an external snapshot is complete, each disk's base (the file its new overlay is
    backed by, which nothing may write to from then on) is fingerprinted: size,
    modification time in nanoseconds and inode, from one ``stat``. The fingerprint goes
    into the snapshot's record. When xlsnap itself legitimately writes to an image (it
    deletes an internal tag stored in it), the step's result records that image's new
    fingerprint, so the latest fingerprint of a file is the last one the ledger holds.
    ``check`` compares it with the file: any write, a replacement by another file or a
    truncation shows, without reading the image. Not caught: a writer that puts the old
    mtime back (``touch -d``) on the same inode with the same size.
    """
    disks = record.get("disks")
    if not disks or all(d.get("type") != "external" or "base_fingerprint" in d for d in disks):
        return record
    filled = [d if d.get("type") != "external" or "base_fingerprint" in d
              else {**d, "base_fingerprint": fingerprint(d["file"])} for d in disks]
    return {**record, "disks": filled}


def latest_fingerprints(events: Iterable[Any]) -> dict[str, Fingerprint]:
    """The last fingerprint the ledger holds for each image, oldest event first.

    Sources: the bases of a ``SnapshotTaken`` record; the ``fingerprints`` of a step's
    result (images xlsnap wrote to itself) or of ``recover``'s probe of such a step.
    """
    latest: dict[str, Fingerprint] = {}
    for event in events:
        kind = type(event).__name__
        if kind == "SnapshotTaken":
            for disk in event.record.get("disks", []):
                if disk.get("base_fingerprint"):
                    latest[disk["file"]] = disk["base_fingerprint"]
        elif kind == "StepFinished" and isinstance(getattr(event, "result", None), dict):
            _refresh(latest, event.result)
        elif kind == "RecoveryDecided" and isinstance(getattr(event, "evidence", None), dict):
            for step in event.evidence.values():
                if isinstance(step, dict) and isinstance(step.get("probe"), dict):
                    _refresh(latest, step["probe"])
    return latest


def _refresh(latest: dict[str, Fingerprint], detail: dict[str, Any]) -> None:
    for path, fp in (detail.get("fingerprints") or {}).items():
        if path in latest and fp:
            latest[path] = fp


def base_changes(entries: dict[str, Any], latest: dict[str, Fingerprint]) -> list[dict[str, Any]]:
    """A ``base-changed`` difference for each recorded base whose file is not as recorded."""
    diffs: list[dict[str, Any]] = []
    seen: set[str] = set()
    for name, entry in entries.items():
        for disk in entry["record"].get("disks", []):
            path = disk.get("file")
            if disk.get("type") != "external" or path in seen or path not in latest:
                continue
            seen.add(path)
            now = fingerprint(path)
            if now is not None and now != latest[path]:
                changed = sorted(k for k in now if now[k] != latest[path].get(k))
                diffs.append({"kind": "base-changed", "snapshot": name,
                              "device": disk["device"], "path": path,
                              "detail": f"{', '.join(changed)} differ from when it became "
                                        "a backing file"})
    return diffs
