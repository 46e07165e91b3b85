"""The images of one disk of a domain, as a backing tree: who backs whom, who holds tags.

Built from the files the ledger's records name for the disk (bases, overlays, the
overlays reverts made), the disk the domain config uses now, and their backing
chains, each read once with ``qemu-img info -U``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from commands.drivers.qemu_img import ImageInfo, QemuImg, QemuImgError
from commands.errors import UsageError


def record_files(disk: dict[str, Any]) -> list[str]:
    """The files one disk of a record names: base, overlay, and the overlays reverts made."""
    return [f for f in (disk.get("file"), disk.get("path"), *disk.get("branches", [])) if f]


@dataclass
class DiskGraph:
    """Backing links between the images of one disk; ``current`` is the config's image."""

    device: str
    current: str | None
    info: dict[str, ImageInfo] = field(default_factory=dict)

    def children(self, path: str) -> list[str]:
        """Known images whose backing file is ``path``, sorted."""
        return sorted(p for p, i in self.info.items() if i.backing_file == path)

    def backing(self, path: str) -> str | None:
        found = self.info.get(path)
        return found.backing_file if found else None

    def has_tags(self, path: str) -> bool:
        found = self.info.get(path)
        return bool(found and found.tags)

    def format(self, path: str) -> str:
        found = self.info.get(path)
        return found.format if found else "raw"


def disk_graph(device: str, current: str | None, records: Iterable[dict[str, Any]],
               qemu_img: QemuImg) -> DiskGraph:
    """Read every image the records name for ``device``, the current one and their chains."""
    graph = DiskGraph(device, current)
    todo = [current] if current else []
    for record in records:
        for disk in record.get("disks", []):
            if disk.get("device") == device:
                todo += record_files(disk)
    while todo:
        path = todo.pop()
        if path in graph.info or not os.path.exists(path):
            continue
        try:
            info = qemu_img.info(path, force_share=True)
        except QemuImgError as exc:
            raise UsageError(f"disk {device!r}: cannot read image {path}: {exc}") from None
        graph.info[path] = info
        if info.backing_file:
            todo.append(info.backing_file)
    return graph
