"""An in-memory ``QemuImg``: images as content versions and internal tags, no processes.

Shaped like ``commands/drivers/qemu_img.py`` (``QemuImg.info`` :64-84, ``chain_bottom``
:86-93, ``snapshot_create``/``_delete``/``_apply`` :106-125, ``create_overlay`` :127-130):
same methods, same ``ImageInfo``/``ProcessResult`` values, failures as ``QemuImgError``
with qemu-img's ``qemu-img: ...`` stderr line. As qemu-img does, a tag name may be given
twice, and applying a tag brings back the content the image had when it was taken.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from commands.drivers.process import ProcessResult
from commands.drivers.qemu_img import ImageInfo, InternalTag, QemuImg, QemuImgError


@dataclass
class Image:
    format: str = "qcow2"
    content: str = "base"                  # what the guest would read
    tags: list[tuple[str, str]] = field(default_factory=list)   # (name, content)


class ImageModel(QemuImg):
    """qemu-img over ``images`` (path -> Image); ``fail_on`` makes a call fail."""

    def __init__(self, images: dict[str, Image]) -> None:
        super().__init__("qemu-img", 1.0)
        self.images = images
        #: ``(verb, path)`` pairs that fail, e.g. ``("snapshot -c", "/img/b.qcow2")``.
        self.fail_on: set[tuple[str, str]] = set()
        self.calls: list[tuple[str, str]] = []

    def _call(self, verb: str, path: str, *args: str) -> ProcessResult:
        self.calls.append((verb, path))
        argv = [self.binary, *verb.split(), *args, path]
        if (verb, path) in self.fail_on:
            result = ProcessResult(argv, 1, "", f"qemu-img: Could not {verb} {path}: injected")
            raise QemuImgError(f"Could not {verb} {path}: injected", result)
        if path not in self.images:
            result = ProcessResult(argv, 1, "", f"qemu-img: Could not open '{path}'")
            raise QemuImgError(f"Could not open '{path}'", result)
        return ProcessResult(argv, 0)

    def info(self, path: str, force_share: bool = False) -> ImageInfo:
        self._call("info", path)
        image = self.images[path]
        tags = tuple(InternalTag(str(n), name, 0, 0)
                     for n, (name, _) in enumerate(image.tags, 1))
        return ImageInfo(path, image.format, 1 << 20, None, tags)

    def read_ahead(self, paths: list[str]) -> None:
        """Nothing to overlap: ``info`` here runs no process."""

    def chain_bottom(self, path: str) -> str:
        self._call("info --backing-chain", path)
        return path

    def snapshot_create(self, path: str, tag: str) -> ProcessResult:
        result = self._call("snapshot -c", path, tag)
        image = self.images[path]
        image.tags.append((tag, image.content))
        return result

    def snapshot_delete(self, path: str, tag: str) -> ProcessResult:
        result = self._call("snapshot -d", path, tag)
        image = self.images[path]
        named = [t for t in image.tags if t[0] == tag]
        if not named:   # qemu-img 7.2's words (qemu-img.c img_snapshot, SNAPSHOT_DELETE)
            failed = ProcessResult(result.argv, 1, "", f"qemu-img: Could not delete snapshot "
                                   f"'{tag}': snapshot not found")
            raise QemuImgError(f"Could not delete snapshot '{tag}': snapshot not found", failed)
        image.tags.remove(named[0])
        return result

    def snapshot_apply(self, path: str, tag: str) -> ProcessResult:
        result = self._call("snapshot -a", path, tag)
        named = [content for name, content in self.images[path].tags if name == tag]
        if len(named) != 1:
            raise QemuImgError(f"{len(named)} snapshots named {tag!r} in {path}", result)
        self.images[path].content = named[0]
        return result

    def create_overlay(self, base: str, base_format: str, overlay: str) -> ProcessResult:
        result = self._call("create", base)
        self.images[overlay] = Image("qcow2", self.images[base].content)
        return result
