"""The qemu-img driver for disks of stopped domains.

qemu-img's ``snapshot -a`` matches an ID before a name, so applying goes by the ID
read from ``info`` just before; ``-c`` accepts duplicate names, so callers check first.
"""

from __future__ import annotations

import json
from typing import NamedTuple

from commands.drivers.open_files import holders
from commands.drivers.process import DriverError, ProcessResult, run, run_together

QEMU_IMG = "qemu-img"


class InternalTag(NamedTuple):
    """One internal snapshot stored in a qcow2 image."""

    id: str
    name: str
    vm_state_size: int
    date_sec: int


class ImageInfo(NamedTuple):
    """The facts of ``qemu-img info --output=json`` that xlsnap relies on."""

    path: str
    format: str
    virtual_size: int
    backing_file: str | None
    tags: tuple[InternalTag, ...]
    corrupt: bool = False

    def find(self, name: str) -> list[InternalTag]:
        """Every internal snapshot called ``name`` (qemu-img allows duplicates)."""
        return [t for t in self.tags if t.name == name]


class QemuImgError(DriverError):
    """qemu-img exited non-zero; the message is its last stderr line."""

    @property
    def image_locked(self) -> bool:
        """True when another process holds the image (qemu's image locking)."""
        return '"write" lock' in self.result.stderr


class QemuImg:
    """Typed wrapper around the ``qemu-img`` executable."""

    def __init__(self, binary: str = QEMU_IMG, timeout: float = 120.0) -> None:
        self.binary = binary
        self.timeout = timeout
        self._read_ahead: dict[str, str] = {}     # path -> ``info -U`` JSON (``read_ahead``)

    def _run(self, *args: str) -> ProcessResult:
        if args[:1] != ("info",):
            self._read_ahead.clear()    # an image may change: what was read ahead is stale
        result = run([self.binary, *args], timeout=self.timeout)
        if not result.ok:
            raise QemuImgError(_last_line(result.stderr) or f"exit {result.returncode}", result)
        return result

    def info(self, path: str, force_share: bool = False) -> ImageInfo:
        """Read an image's format, size, backing file and internal snapshots.

        ``force_share`` (``-U``) takes no lock: for checks made before an operation
        starts, so that a check never makes another process's write fail.
        """
        ahead = self._read_ahead.pop(path, None) if force_share else None
        if ahead is not None:
            data = json.loads(ahead)
        else:
            args = ["info", "-U"] if force_share else ["info"]
            data = json.loads(self._run(*args, "--output=json", path).stdout)
        tags = tuple(
            InternalTag(str(s["id"]), str(s["name"]), int(s.get("vm-state-size", 0)),
                        int(s.get("date-sec", 0)))
            for s in data.get("snapshots", [])
        )
        return ImageInfo(
            path=path, format=str(data.get("format")),
            virtual_size=int(data.get("virtual-size", 0)),
            backing_file=data.get("full-backing-filename") or data.get("backing-filename"),
            tags=tags,
            corrupt=bool(((data.get("format-specific") or {}).get("data") or {}).get("corrupt")),
        )

    def read_ahead(self, paths: list[str]) -> None:
        """Run ``info -U`` for several images at once; the next ``info(path,
        force_share=True)`` of each takes its answer instead of running qemu-img again.

        For checks before an operation (a 2-disk plan waits for one qemu-img, not two).
        Any other qemu-img run forgets what was read ahead; a failed read is not kept
        (``info`` then runs and raises as ever).
        """
        self._read_ahead.clear()
        if len(paths) < 2:
            return
        wanted = list(dict.fromkeys(paths))
        argvs = [[self.binary, "info", "-U", "--output=json", p] for p in wanted]
        for path, result in zip(wanted, run_together(argvs, timeout=self.timeout)):
            if result is not None and result.ok:
                self._read_ahead[path] = result.stdout

    def chain_bottom(self, path: str) -> str:
        """The image at the bottom of ``path``'s backing chain (``path`` itself if none).

        Read with ``-U``: the chain may belong to a running domain.
        """
        result = self._run("info", "-U", "--backing-chain", "--output=json", path)
        chain = json.loads(result.stdout)
        return str(chain[-1].get("filename", path)) if chain else path

    def _check_not_open(self, argv: list[str], path: str) -> None:
        """Refuse to write an image another process has open: QEMU's lock does not show
        a Xen qdisk backend's (``locking=off``), so look for it (``open_files.holders``)."""
        self._read_ahead.clear()        # a write comes: what was read ahead is stale
        open_by = holders([path]).get(path)
        if open_by:
            result = ProcessResult(argv, 1, "", f'Failed to get "write" lock: another process '
                                   f"(pid {', '.join(map(str, open_by))}) has {path} open; not "
                                   f"written\nIs another process using the image [{path}]? (a "
                                   "device model with locking off takes no lock)")
            raise QemuImgError(result.stderr, result)

    def snapshot_create(self, path: str, tag: str) -> ProcessResult:
        self._check_not_open([self.binary, "snapshot", "-c", tag, path], path)
        return self._run("snapshot", "-c", tag, path)

    def snapshot_delete(self, path: str, tag: str) -> ProcessResult:
        self._check_not_open([self.binary, "snapshot", "-d", tag, path], path)
        return self._run("snapshot", "-d", tag, path)

    def snapshot_apply(self, path: str, tag: str) -> ProcessResult:
        """Apply the one snapshot named ``tag``, addressed by its current ID."""
        info = self.info(path)
        found = info.find(tag)
        if len(found) != 1:
            result = ProcessResult([self.binary, "snapshot", "-a", tag, path], 1, "",
                                   f"{len(found)} snapshots named {tag!r} in {path}")
            raise QemuImgError(result.stderr, result)
        self._check_not_open([self.binary, "snapshot", "-a", found[0].id, path], path)
        result = self._run("snapshot", "-a", found[0].id, path)
        return ProcessResult(result.argv, result.returncode, result.stdout, result.stderr,
                             result.duration_ms, {"tag": tag, "id": found[0].id})

    def create_overlay(self, base: str, base_format: str, overlay: str) -> ProcessResult:
        """Make a qcow2 overlay backed by ``base`` (both absolute paths)."""
        return self._run("create", "-q", "-f", "qcow2", "-F", base_format, "-b", base, overlay)


    def commit(self, top: str, base: str) -> ProcessResult:
        """Write ``top``'s data into ``base`` (its backing file); ``top`` is kept as it is."""
        self._check_not_open([self.binary, "commit", "-d", "-b", base, top], base)
        return self._run("commit", "-q", "-d", "-b", base, top)

    def rebase(self, path: str, backing: str | None, backing_format: str | None,
               unsafe: bool = False) -> ProcessResult:
        """Give ``path`` a new backing file (None: none); safe mode copies what differs."""
        args = ["rebase", "-q", "-f", "qcow2", *(["-u"] if unsafe else [])]
        args += ["-b", backing or ""] + (["-F", backing_format] if backing and backing_format
                                         else [])
        self._check_not_open([self.binary, *args, path], path)
        return self._run(*args, path)


    def image_from_tag(self, image: str, tag: str, new: str, backing: str | None,
                       backing_format: str | None) -> ProcessResult:
        """A new qcow2 ``new`` holding ``image``'s internal snapshot ``tag``, over ``backing``
        (the image's own backing file: only what the snapshot holds above it is copied)."""
        base = ["-B", backing, "-F", backing_format or "raw"] if backing else []
        return self._run("convert", "-f", "qcow2", "-l", f"snapshot.name={tag}", "-O", "qcow2",
                         *base, image, new)


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    errors = [ln for ln in lines if not ln.startswith(("WARNING", "Automatically", "Specify"))]
    return (errors or lines or [""])[-1]
