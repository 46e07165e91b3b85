"""qcow2 images marked corrupt: refused before an operation, named after a failed one.

qemu marks a qcow2 image corrupt (a header flag) when it finds its metadata broken,
for example when a ``qemu-img snapshot -c`` on a truncated image would overwrite its
own tables; such an image opens read-only until ``qemu-img check -r`` repairs it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from commands.drivers.qemu_img import QemuImg, QemuImgError
from commands.errors import AttentionNeeded, OperationFailed, UsageError

UNDONE = "what was done has been undone, nothing changed"


class ImageMarkedCorrupt(AttentionNeeded):
    """A failed operation was undone, but an image it touched is now marked corrupt."""


def refuse_corrupt(device: str, path: str, corrupt: bool) -> None:
    """Exit 2 for a disk whose image is already marked corrupt."""
    if corrupt:
        raise UsageError(f"disk {device!r}: image {path} is marked corrupt; repair it "
                         f"first ('qemu-img check -r all {path}', after a copy)")


def marked_corrupt(paths: Iterable[str], qemu_img: QemuImg) -> list[str]:
    """Those of ``paths`` whose qcow2 corrupt flag is set now."""
    found = []
    for path in paths:
        try:
            if os.path.exists(path) and qemu_img.info(path, force_share=True).corrupt:
                found.append(path)
        except QemuImgError:
            continue
    return found


def after_failure(exc: OperationFailed, paths: list[str], qemu_img: QemuImg) -> XlsnapError:
    """``exc``, unless an image of the failed operation is now marked corrupt: say so."""
    corrupt = marked_corrupt(paths, qemu_img)
    if not corrupt:
        return exc
    what = exc.message.replace(UNDONE, "what was done has been undone")
    return ImageMarkedCorrupt(
        f"{what}; but qemu has now marked {', '.join(corrupt)} corrupt (it was not "
        f"before): repair it with 'qemu-img check -r all' (after a copy), then 'xlsnap check'")
