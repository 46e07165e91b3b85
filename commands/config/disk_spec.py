"""xl disk specs (``man xl-disk-configuration``): parse one as xl 4.17 does, and back."""

from __future__ import annotations

from typing import NamedTuple

from commands.config.xlcfg import quoted
from commands.config.xlu_disk import XluDisk, _Bad, xlu_disk_fields
from commands.errors import ConfigError


class DiskSpec(NamedTuple):
    """One guest disk as xl reads it; ``target`` None means an empty cdrom drive.

    ``extra`` holds the options xlsnap passes through unchanged, as (key, value)
    pairs in the order ``format_disk_spec`` writes them (value None for a flag).
    """

    vdev: str
    target: str | None
    format: str = "raw"
    access: str = "rw"
    devtype: str = "disk"
    backendtype: str | None = None
    script: str | None = None
    extra: tuple[tuple[str, str | None], ...] = ()
    prefix: str = ""

    @property
    def writable(self) -> bool:
        """True for a read-write disk (not a cdrom, not read-only)."""
        return self.access == "rw" and self.devtype == "disk"


def _extra(disk: XluDisk) -> tuple[tuple[str, str | None], ...]:
    """The options xlsnap keeps as they are, in the order format_disk_spec writes them."""
    extra: list[tuple[str, str | None]] = []
    if disk.backend_domname is not None:
        extra.append(("backend", disk.backend_domname))
    if disk.specification is not None:
        extra.append(("specification", disk.specification))
    for key, member in (("colo-host", "colo_host"), ("colo-export", "colo_export"),
                        ("active-disk", "active_disk"), ("hidden-disk", "hidden_disk")):
        if getattr(disk, member) is not None:
            extra.append((key, getattr(disk, member)))
    if disk.colo_port:
        extra.append(("colo-port", str(disk.colo_port)))
    if disk.direct_io_safe:
        extra.append(("direct-io-safe", None))
    for member, yes, no in (("discard", "discard", "no-discard"), ("colo", "colo", "no-colo")):
        value = getattr(disk, member)
        if value is not None:
            extra.append((yes if value else no, None))
    return tuple(extra)


def parse_disk_spec(spec: str) -> DiskSpec:
    """Parse one xl disk spec. Raises ConfigError("bad disk spec '...': why").

    ``xlu_disk_fields`` follows Xen 4.17's disk lexer rule by rule
    (``tools/libs/util/libxlu_disk_l.l`` lines 189-301, post-processing from
    ``libxlu_disk.c`` xlu_disk_parse): the longest match wins, ties go to the earlier
    rule, trailing context counts towards the length. So, as in xl: no spaces around
    ``=`` (``format = raw`` is refused), a value keeps its trailing whitespace,
    ``target=`` swallows the rest of the spec less one trailing comma, COLO keys are
    accepted, the last of two contradictory flags wins, and a value given twice is
    refused unless the first was empty. ``trusted``/``untrusted`` are no flags to xl
    4.17 (see ``_RULES``). ``parse_disk_spec`` then adds the two refusals
    that libxl makes later when it creates the domain (no vdev, an empty target on a
    non-cdrom disk) and returns a ``DiskSpec``.
    """
    try:
        disk = xlu_disk_fields(spec)
        # What libxl refuses later, when it creates the domain (libxl_device.c line
        # 439 "Disk vdev=%s is empty but not cdrom"; an empty vdev has no number).
        if not disk.vdev:
            raise _Bad("no vdev (the guest device name, e.g. xvda) given")
        if not disk.pdev_path and not disk.is_cdrom:
            raise _Bad("no target given (only a cdrom drive may be empty)")
    except _Bad as why:
        raise ConfigError(f"bad disk spec {quoted(spec)}: {why}") from None
    assert disk.format is not None
    return DiskSpec(
        vdev=disk.vdev,
        target=disk.pdev_path or None,
        format=disk.format,
        access="rw" if disk.readwrite else "ro",
        devtype="cdrom" if disk.is_cdrom else "disk",
        backendtype=disk.backend,
        script=disk.script,
        extra=_extra(disk),
        prefix=disk.prefix,
    )


def format_disk_spec(disk: DiskSpec) -> str:
    """The key=value form of ``disk`` that xl reads back to the same disk, target last.

    Values are written as they are (xl keeps their whitespace); ``target=`` swallows
    the rest but xl drops one trailing comma, so a target ending in ``,`` gets one more.
    """
    parts = [f"format={disk.format}", f"vdev={disk.vdev}", f"access={disk.access}"]
    if disk.devtype != "disk":
        parts.append(f"devtype={disk.devtype}")
    if disk.backendtype:
        parts.append(f"backendtype={disk.backendtype}")
    if disk.script is not None:
        parts.append(f"script={disk.script}")
    parts.extend(key if value is None else f"{key}={value}" for key, value in disk.extra)
    if disk.target is not None:
        if "\n" in disk.target:
            raise ValueError("xl reads a disk target only up to a newline")
        parts.append(f"target={disk.target}" + ("," if disk.target.endswith(",") else ""))
    return ", ".join(parts)
