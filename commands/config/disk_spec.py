"""xl disk specs (``man xl-disk-configuration``): parse one into a DiskSpec, and back.

A spec mixes positional parameters ``[target, [format, [vdev, [access]]]]`` with
``key=value`` parameters and flags; ``target=`` swallows the rest of the string.
Deprecated prefixes (``phy:``, ``tap:aio:``, ``qcow2:``...) are understood.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from commands.config.xlcfg import quoted
from commands.errors import ConfigError

FORMATS = ("raw", "qcow", "qcow2", "vhd", "qed", "empty")
BACKENDTYPES = ("phy", "tap", "qdisk", "standalone")
_ACCESS = {"ro": "ro", "r": "ro", "rw": "rw", "w": "rw"}
_WS = " \t\n\r"
_FORMAT_PREFIXES = frozenset({"raw", "qcow", "qcow2", "vhd", "qed"})
_SCRIPT_PREFIXES = frozenset({"iscsi", "nbd", "enbd", "drbd"})
_IGNORED_PREFIXES = frozenset({"phy", "file", "tap", "tap2", "tapdisk", "aio", "ioemu"})
_PREFIX_RE = re.compile(r"([a-z][a-z0-9]*):")
_PREFIX_TAIL = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_KEY_RE = re.compile(r"[a-z][-a-z0-9_]*\Z")
_TARGET_RE = re.compile(r"target[ \t\n\r]*=")
_COLO = frozenset({"colo", "no-colo", "colo-host", "colo-port", "colo-export",
                   "active-disk", "hidden-disk"})
# Options kept verbatim in DiskSpec.extra, in this (canonical) order; None = a flag.
_EXTRA_VALUES: dict[str, tuple[str, ...] | None] = {
    "backend": (), "specification": ("xen", "virtio"), "grant_usage": ("0", "1"),
}
_FLAGS = ("discard", "no-discard", "direct-io-safe", "trusted", "untrusted")
_EXTRA_ORDER = tuple(_EXTRA_VALUES) + _FLAGS
_OPPOSITE = {"discard": "no-discard", "no-discard": "discard",
             "trusted": "untrusted", "untrusted": "trusted"}


class DiskSpec(NamedTuple):
    """One guest disk as xl reads it; ``target`` None means an empty cdrom drive."""

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


class _Bad(Exception):
    """Why a spec is bad; turned into a ConfigError quoting the whole spec."""


class _SpecParser:
    """The state of parsing one spec, following libxlu's disk lexer."""

    def __init__(self) -> None:
        self.target: str | None = None       # "" = given but empty
        self.format: str | None = None
        self.format_slot = False             # the positional format was consumed
        self.vdev: str | None = None
        self.access: str | None = None
        self.access_slot = False
        self.devtype: str | None = None
        self.backendtype: str | None = None
        self.script: str | None = None
        self.extra: dict[str, str | None] = {}
        self.prefix = ""

    def parse(self, spec: str) -> DiskSpec:
        i, n = 0, len(spec)
        while i < n:
            while i < n and spec[i] in _WS:
                i += 1
            if i >= n:
                break
            named = _TARGET_RE.match(spec, i)
            if named:
                self.set_target(spec[named.end():].strip(_WS))
                break
            comma = spec.find(",", i)
            end = n if comma < 0 else comma
            self.item(spec[i:end].strip(_WS))
            i = end + 1
        return self.finish()

    @staticmethod
    def _set(current: str | None, value: str, what: str) -> str:
        if current is not None and current != "" and current != value:
            raise _Bad(f"{what} respecified ({current!r} and {value!r})")
        return value

    def set_target(self, value: str) -> None:
        if value or self.target is None:
            self.target = self._set(self.target, value, "target")

    def set_format(self, value: str) -> None:
        self.format_slot = True
        if value:
            if value not in FORMATS:
                raise _Bad(f"unknown format {value!r} (expected one of {', '.join(FORMATS)})")
            self.format = self._set(self.format, value, "format")

    def set_access(self, value: str) -> None:
        if value:
            if value not in _ACCESS:
                raise _Bad(f"unknown access {value!r} (expected ro, r, rw or w)")
            self.access = self._set(self.access, _ACCESS[value], "access")

    def set_devtype(self, value: str) -> None:
        if value not in ("disk", "cdrom"):
            raise _Bad(f"unknown devtype {value!r} (expected disk or cdrom)")
        self.devtype = self._set(self.devtype, value, "devtype")

    def set_vdev(self, value: str, legacy: bool) -> None:
        if legacy and ":" in value:
            value, _, devtype = value.rpartition(":")
            if devtype not in ("cdrom", "disk"):
                raise _Bad(f"unknown device type suffix {devtype!r} on vdev "
                           "(expected :cdrom or :disk)")
            self.set_devtype(devtype)
        if value:
            self.vdev = self._set(self.vdev, value, "vdev")

    def item(self, item: str) -> None:
        if item in _COLO or item.partition("=")[0] in _COLO:
            raise _Bad("COLO disk options are not supported")
        if item == "cdrom":
            self.set_devtype("cdrom")
        elif item in _FLAGS:
            if _OPPOSITE.get(item) in self.extra:
                raise _Bad(f"{item!r} conflicts with {_OPPOSITE[item]!r}")
            self.extra[item] = None
        elif "=" in item:
            key, _, value = item.partition("=")
            self.keyword(key.strip(_WS), value.strip(_WS), item)
        else:
            self.positional(item)

    def keyword(self, key: str, value: str, item: str) -> None:
        if not _KEY_RE.match(key):
            raise _Bad(f"bad parameter {item!r} (a target containing '=' or ',' "
                       f"must be given last, as target=...)")
        if key == "format":
            self.set_format(value)
        elif key == "vdev":
            self.set_vdev(value, legacy=False)
        elif key == "access":
            self.set_access(value)
        elif key == "devtype":
            self.set_devtype(value)
        elif key == "backendtype":
            if value not in BACKENDTYPES:
                raise _Bad(f"unknown backendtype {value!r} "
                           f"(expected one of {', '.join(BACKENDTYPES)})")
            self.backendtype = self._set(self.backendtype, value, "backendtype")
        elif key == "script":
            if value:
                self.script = self._set(self.script, value, "script")
        elif key in _EXTRA_VALUES:
            allowed = _EXTRA_VALUES[key]
            if allowed and value not in allowed:
                raise _Bad(f"unknown value {value!r} for {key} (expected {' or '.join(allowed)})")
            if value:
                self.extra[key] = self._set(self.extra.get(key), value, key)
        else:
            raise _Bad(f"unknown parameter {key!r}")

    def positional(self, item: str) -> None:
        if self.target is None:
            self.target = self.strip_prefixes(item)
        elif not self.prefix and not self.format_slot:
            if self.target == "" and ":" in item:   # xend's empty cdrom: ",hdc:cdrom,r"
                self.format_slot = True
                self.set_vdev(item, legacy=True)
            else:
                self.set_format(item)
        elif self.vdev is None:
            self.set_vdev(item, legacy=True)
        elif not self.access_slot:
            self.access_slot = True
            self.set_access(item)
        else:
            raise _Bad(f"too many positional parameters at {item!r}")

    def strip_prefixes(self, item: str) -> str:
        """The target without its deprecated prefixes, applying what they mean."""
        while True:
            match = _PREFIX_RE.match(item)
            if not match:
                return item.strip(_WS)
            name, rest = match.group(1), item[match.end():]
            if name in _FORMAT_PREFIXES:
                self.set_format(name)
            elif name in _SCRIPT_PREFIXES:
                self.script = self._set(self.script, f"block-{name}", "script")
            elif name not in _IGNORED_PREFIXES:
                if rest[:1] and rest[0] in _PREFIX_TAIL:
                    return item.strip(_WS)   # "name:more" is no prefix (xl agrees)
                raise _Bad(f"unknown disk prefix {match.group(0)!r}")
            self.prefix += match.group(0)
            item = rest

    def finish(self) -> DiskSpec:
        if not self.vdev:
            raise _Bad("no vdev (the guest device name, e.g. xvda) given")
        devtype = self.devtype or "disk"
        target = self.target or None
        if target is None and devtype != "cdrom":
            raise _Bad("no target given (only a cdrom drive may be empty)")
        if target is not None and self.format == "empty":
            raise _Bad("format 'empty' is only for a cdrom drive with no target")
        extra = tuple((key, self.extra[key]) for key in _EXTRA_ORDER if key in self.extra)
        return DiskSpec(
            vdev=self.vdev,
            target=target,
            format="empty" if target is None else self.format or "raw",
            access="ro" if devtype == "cdrom" else self.access or "rw",
            devtype=devtype,
            backendtype=self.backendtype,
            script=self.script,
            extra=extra,
            prefix=self.prefix,
        )


def parse_disk_spec(spec: str) -> DiskSpec:
    """Parse one xl disk spec. Raises ConfigError("bad disk spec '...': why")."""
    if not spec.strip(_WS):
        raise ConfigError(f"bad disk spec {quoted(spec)}: it is empty")
    try:
        return _SpecParser().parse(spec)
    except _Bad as why:
        raise ConfigError(f"bad disk spec {quoted(spec)}: {why}") from None


def format_disk_spec(disk: DiskSpec) -> str:
    """The canonical key=value form of ``disk``, target last (it swallows the rest)."""
    parts = [f"format={disk.format}", f"vdev={disk.vdev}", f"access={disk.access}"]
    if disk.devtype != "disk":
        parts.append(f"devtype={disk.devtype}")
    if disk.backendtype:
        parts.append(f"backendtype={disk.backendtype}")
    if disk.script:
        parts.append(f"script={disk.script}")
    parts.extend(key if value is None else f"{key}={value}" for key, value in disk.extra)
    if disk.target is not None:
        parts.append(f"target={disk.target}")
    return ", ".join(parts)
