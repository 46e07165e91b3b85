"""How deleting an external snapshot merges its images so no other content changes."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from commands.engine.actions import StepSpec
from commands.planning.image_graph import DiskGraph, record_files
from commands.state.atomic_files import allocated


@dataclass
class DiskMerge:
    """The steps for one disk, the files it drops, and the bytes its merge copies."""

    steps: list[StepSpec] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    moved: dict[str, str] = field(default_factory=dict)   # old file -> file with its content
    repoint_to: tuple[str, str] | None = None              # (new current image, its format)
    writes: dict[str, int] = field(default_factory=dict)   # file written -> bytes at most
    kept: str = ""                                          # why nothing merges, if so


def roles(records: list[dict[str, Any]], device: str) -> tuple[set[str], set[str]]:
    """Files remaining snapshots stand on (bases), and their overlays/branches (leaves)."""
    bases: set[str] = set()
    leaves: set[str] = set()
    for record in records:
        for disk in record.get("disks", []):
            if disk.get("device") != device:
                continue
            if disk.get("type") != "external":
                leaves.update(disk.get("branches", []))   # images reverts made of its tag
                continue
            bases.add(disk["file"])
            leaves.update(record_files(disk)[1:])
    return bases, leaves


def internal_leftovers(graph: DiskGraph, disk: dict[str, Any],
                       others: list[dict[str, Any]]) -> list[str]:
    """Files that hold nothing once an internal snapshot's tag is gone: the images reverts
    made of it and the tagged image itself, when no one uses, backs on or names them."""
    bases, leaves = roles(others, graph.device)
    candidates = [*disk.get("branches", []), disk["file"]]
    gone: list[str] = []
    for path in candidates:
        info = graph.info.get(path)
        if (info is None or path == graph.current or path in bases or path in leaves
                or [c for c in graph.children(path) if c not in gone]
                or [t for t in info.tags if t.name != disk["name"]]):
            continue
        gone.append(path)
    return gone


def plan_disk_merge(graph: DiskGraph, disk: dict[str, Any],
                    others: list[dict[str, Any]]) -> DiskMerge:
    """Plan the merge of one external disk of the snapshot being deleted.

    A snapshot's external disk stands on its base B (its state) with its overlay O on top.
    Once it is gone, B's content need not stay as it is unless another snapshot stands on
    B, or B is the disk in use. Then, per disk:

    * O is dropped when nothing needs it (an abandoned branch: not in use, no child, no
      tag, no other snapshot's file);
    * B with one child C (no tags in C): C is committed into B, C's children and the
      config are pointed at B, C is dropped (the records naming C name B from then on);
    * B with several children and no tags of its own: B's data is streamed into each
      child, their backing becomes B's backing, B is dropped;
    * otherwise (tags that read through B, B still some snapshot's state) B stays.
    """
    merge = DiskMerge()
    bases, leaves = roles(others, graph.device)
    base = disk["file"]
    gone: set[str] = set()
    for overlay in record_files(disk)[1:]:
        if (overlay in graph.info and overlay != graph.current and overlay not in bases
                and overlay not in leaves and not graph.children(overlay)
                and not graph.has_tags(overlay)):
            merge.steps.append(StepSpec("image-remove", overlay, {"path": overlay}))
            merge.removed.append(overlay)
            gone.add(overlay)
    children = [c for c in graph.children(base) if c not in gone]
    if base not in graph.info:
        merge.kept = f"{base} is gone"
        return merge
    if base in bases or base == graph.current or (not children and base in leaves):
        merge.kept = f"{base} is still another snapshot's state"
        return merge
    if len(children) == 1 and not graph.has_tags(children[0]):
        _commit(graph, base, children[0], merge)
    elif children and not graph.has_tags(base) and not any(graph.has_tags(c) for c in children):
        _stream(graph, base, children, merge)
    elif not children and not graph.has_tags(base):
        merge.steps.append(StepSpec("image-remove", base, {"path": base}))
        merge.removed.append(base)
    else:
        merge.kept = f"{base} holds internal snapshots that its children read through"
    return merge


def _commit(graph: DiskGraph, base: str, child: str, merge: DiskMerge) -> None:
    fmt = graph.format(base)
    merge.steps.append(StepSpec("image-commit", base, {"top": child, "base": base}))
    merge.writes[base] = allocated(child)
    for grandchild in graph.children(child):
        merge.steps.append(StepSpec("backing-repoint", grandchild, {
            "path": grandchild, "old": child, "old_format": graph.format(child),
            "new": base, "format": fmt}))
    merge.moved[child] = base
    if child == graph.current:
        merge.repoint_to = (base, fmt)
    merge.steps.append(StepSpec("image-remove", child, {"path": child}))
    merge.removed.append(child)


def _stream(graph: DiskGraph, base: str, children: list[str], merge: DiskMerge) -> None:
    below = graph.backing(base)
    for child in children:
        merge.steps.append(StepSpec("backing-stream", child, {
            "path": child, "old": base, "old_format": graph.format(base), "new": below,
            "format": graph.format(below) if below else None}))
        merge.writes[child] = allocated(base)
    merge.moved[base] = children[0]
    merge.steps.append(StepSpec("image-remove", base, {"path": base}))
    merge.removed.append(base)


def moved_record(record: dict[str, Any], device: str, moved: dict[str, str],
                 formats: dict[str, str]) -> dict[str, Any] | None:
    """``record`` with the files of ``device`` that moved renamed (None when none did).

    A base that moved loses its fingerprint: it is taken again when the delete ends.
    """
    changed = False
    disks = []
    for disk in record.get("disks", []):
        if disk.get("device") != device or disk.get("type") != "external":
            disks.append(disk)
            continue
        new = dict(disk)
        if disk["file"] in moved:
            new["file"] = moved[disk["file"]]
            new["format"] = formats.get(new["file"], disk.get("format"))
            new.pop("base_fingerprint", None)
        if disk.get("path") in moved:
            new["path"] = moved[disk["path"]]
        if disk.get("branches"):
            new["branches"] = [moved.get(b, b) for b in disk["branches"]]
        changed = changed or new != disk
        disks.append(new)
    return {**record, "disks": disks} if changed else None


def free_space(path: str) -> int:
    """Bytes an unprivileged writer may still use on ``path``'s file system."""
    st = os.statvfs(os.path.dirname(path) or ".")
    return st.f_bavail * st.f_frsize


def read_only(path: str) -> bool:
    """True when ``path``'s file system is mounted read-only."""
    return bool(os.statvfs(os.path.dirname(path) or ".").f_flag & os.ST_RDONLY)
