"""xl 4.17's disk-spec lexer (libxlu_disk_l.l), rule by rule: the fields libxl gets."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

FORMATS = ("raw", "qcow", "qcow2", "vhd", "qed", "empty")
BACKENDTYPES = ("phy", "tap", "qdisk", "standalone")
_STRING_KEYS = {"backend": "backend_domname", "vdev": "vdev", "script": "script",
                "colo-host": "colo_host", "colo-export": "colo_export",
                "active-disk": "active_disk", "hidden-disk": "hidden_disk"}
_FLAGS = {"direct-io-safe": ("direct_io_safe", True), "discard": ("discard", True),
          "no-discard": ("discard", False), "colo": ("colo", True),
          "no-colo": ("colo", False)}


class _Bad(Exception):
    """Why a spec is bad; turned into a ConfigError quoting the whole spec."""


@dataclass
class XluDisk:
    """The fields of ``libxl_device_disk`` that xlu_disk_parse sets (None = unset)."""

    pdev_path: str | None = None
    vdev: str | None = None
    format: str | None = None
    backend: str | None = None
    script: str | None = None
    readwrite: int = 1
    is_cdrom: int = 0
    removable: int = 0
    direct_io_safe: bool = False
    discard: bool | None = None
    specification: str | None = None
    backend_domname: str | None = None
    colo: bool | None = None
    colo_host: str | None = None
    colo_port: int = 0
    colo_export: str | None = None
    active_disk: str | None = None
    hidden_disk: str | None = None
    trusted: bool | None = None  # never set by xl 4.17's scanner (see _RULES)
    prefix: str = ""  # the deprecated prefixes seen, e.g. "tap:aio:" (xlsnap's own)


_Action = Callable[["_Lexer", str], bool]  # returns False to stop, as ``return 0``


class _Lexer:
    """One run of the disk lexer over a spec (DiskParseContext of libxlu_disk_i.h)."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.disk = XluDisk()
        self.err: str | None = None
        self.access_set = False
        self.had_depr_prefix = False

    def error(self, near: str | None, message: str) -> None:
        """xlu__disk_err: remember the first error and go on."""
        if self.err is None:
            self.err = message + (f" near {near!r}" if near is not None else "")

    # -- helpers of libxlu_disk_l.l lines 63-167 ---------------------------------------
    def dset(self, member: str, value: str) -> None:
        current = getattr(self.disk, member)
        if current is not None and current != value:
            self.error(value, f"{member} respecified")
        else:
            setattr(self.disk, member, value)

    def savestring(self, what: str, member: str, value: str) -> None:
        current = getattr(self.disk, member)
        if current:
            self.error(value, f"{what} respecified")
            return
        setattr(self.disk, member, value)

    def setaccess(self, value: str) -> None:
        if value in ("r", "ro"):
            self.disk.readwrite = 0
        elif value in ("rw", "w", ""):
            self.disk.readwrite = 1
        else:
            self.error(value, "unknown value for access")

    def setformat(self, value: str) -> None:
        if value in ("", "raw"):
            self.dset("format", "raw")
        elif value in FORMATS:
            self.dset("format", value)
        else:
            self.error(value, "unknown value for format")

    def vdev_and_devtype(self, text: str) -> bool:
        vdev, colon, devtype = text.rpartition(":")
        if not colon:
            return False
        self.savestring("vdev", "vdev", vdev)
        if devtype == "cdrom":
            self.disk.is_cdrom = 1
        elif devtype == "disk":
            self.disk.is_cdrom = 0
        else:
            self.error(devtype, "unknown deprecated type")
        return True

    # -- rule actions ----------------------------------------------------------------
    def keyword(self, text: str) -> bool:
        key, _, value = _strip(text, ",").partition("=")
        if key == "format":
            self.setformat(value)
        elif key == "access":
            self.setaccess(value)
        elif key == "backendtype":
            if value in BACKENDTYPES:
                self.dset("backend", value)
            else:
                self.error(value, "unknown value for backendtype")
        elif key == "specification":
            if value in ("xen", "virtio"):
                self.dset("specification", value)
            else:
                self.error(value, "unknown value for specification")
        elif key == "colo-port":
            port = _atoi(value)
            if port:
                self.disk.colo_port = port
            else:
                self.error(value, "unknown value for colo_port")
        else:
            self.savestring(key, _STRING_KEYS[key], value)
        return True

    def flag(self, text: str) -> bool:
        name = _strip(text, ",")
        member, value = _FLAGS[name]
        setattr(self.disk, member, value)
        return True

    def cdrom(self, text: str) -> bool:
        self.disk.is_cdrom = 1
        return True

    def devtype(self, text: str) -> bool:
        value = _strip(text, ",").partition("=")[2]
        if value == "cdrom":
            self.disk.is_cdrom = 1
        elif value == "disk":
            self.disk.is_cdrom = 0
        else:
            self.error(text, "unknown value for type")
        return True

    def target(self, text: str) -> bool:
        self.savestring("target", "pdev_path", _strip(text, ",").partition("=")[2])
        return True

    def unknown(self, text: str) -> bool:
        self.error(text, "unknown parameter")
        return True

    def format_prefix(self, text: str) -> bool:
        self.had_depr_prefix = True
        self.disk.prefix += text
        self.setformat(text[:-1])
        return True

    def script_prefix(self, text: str) -> bool:
        self.had_depr_prefix = True
        self.disk.prefix += text
        self.savestring("script", "script", f"block-{text[:-1]}")
        return True

    def ignored_prefix(self, text: str) -> bool:
        self.had_depr_prefix = True
        self.disk.prefix += text
        return True

    def bad_prefix(self, text: str) -> bool:
        self.error(text, "unknown deprecated disk prefix")
        return False

    def positional(self, text: str) -> bool:
        text = _strip(text, ",")
        disk = self.disk
        if self.err is not None:
            pass  # previous errors may just lead to subsequent ones
        elif disk.pdev_path is None:
            self.savestring("target", "pdev_path", text)
        elif not self.had_depr_prefix and disk.format is None:
            if disk.pdev_path == "" and self.vdev_and_devtype(text):
                disk.format = "empty"
            else:
                self.setformat(text)
        elif disk.vdev is None:
            if not self.vdev_and_devtype(text):
                self.savestring("vdev", "vdev", text)
        elif not self.access_set:
            self.access_set = True
            self.setaccess(text)
        else:
            self.error(text, "too many positional parameters")
            return False
        return True

    def skip(self, text: str) -> bool:
        return True

    # -- the scanner ------------------------------------------------------------------
    def run(self) -> None:
        pos, spec = 0, self.spec
        while pos < len(spec):
            best: tuple[int, int, _Action] | None = None  # (length, head length, action)
            for regex, action in _RULES:
                match = regex.match(spec, pos)
                if match is None:
                    continue
                total = match.end() - pos
                if total > 0 and (best is None or total > best[0]):
                    best = (total, match.end("head") - pos, action)
            if best is None:
                # the '.' rule, then <LEXERR>.* (the rest of the line): "bad disk syntax";
                # a last ASCII character leaves nothing for <LEXERR> and flex just stops.
                rest = re.match(r"[^\n]*", spec[pos + 1:])
                if pos == len(spec) - 1 and spec[pos].isascii():
                    return
                assert rest is not None
                self.error(spec[pos] + rest.group(), "bad disk syntax")
                return
            _total, head, action = best
            if not action(self, spec[pos:pos + head]):
                return
            pos += head


def _strip(text: str, delim: str) -> str:
    """STRIP(delim): drop one trailing ``delim``."""
    return text[:-1] if text.endswith(delim) else text


def _atoi(text: str) -> int:
    """C atoi: leading white space, a sign, then digits; 0 when there are none."""
    match = re.match(r"[ \t\n\v\f\r]*([+-]?[0-9]+)", text)
    return int(match.group(1)) if match else 0


def _rule(head: str, trailing: str = "") -> re.Pattern[str]:
    return re.compile(f"(?P<head>{head}){trailing}")


# libxlu_disk_l.l lines 189-293, in order (earlier rules win ties); without the
# ``trusted`` / ``untrusted`` rules of lines 220-221: the scanner Xen 4.17 ships
# (the generated libxlu_disk_l.c, committed in the tree and built by Debian) predates
# them, so to xl 4.17 "trusted" is a positional parameter (libxlutil.so.4.17 agrees).
_RULES: list[tuple[re.Pattern[str], _Action]] = [
    (_rule(r"[ \t\n]+", r"(?:[^ \t\n].*)?"), _Lexer.skip),
    (_rule(r"format=[^,]*,?"), _Lexer.keyword),
    (_rule(r"cdrom,?"), _Lexer.cdrom),
    (_rule(r"devtype=cdrom,?"), _Lexer.devtype),
    (_rule(r"devtype=disk,?"), _Lexer.devtype),
    (_rule(r"devtype=[^,]*,?"), _Lexer.devtype),
    (_rule(r"access=[^,]*,?"), _Lexer.keyword),
    (_rule(r"backend=[^,]*,?"), _Lexer.keyword),
    (_rule(r"backendtype=[^,]*,?"), _Lexer.keyword),
    (_rule(r"specification=[^,]*,?"), _Lexer.keyword),
    (_rule(r"vdev=[^,]*,?"), _Lexer.keyword),
    (_rule(r"script=[^,]*,?"), _Lexer.keyword),
    (_rule(r"direct-io-safe,?"), _Lexer.flag),
    (_rule(r"discard,?"), _Lexer.flag),
    (_rule(r"no-discard,?"), _Lexer.flag),
    (_rule(r"colo,?"), _Lexer.flag),
    (_rule(r"no-colo,?"), _Lexer.flag),
    (_rule(r"colo-host=[^,]*,?"), _Lexer.keyword),
    (_rule(r"colo-port=[^,]*,?"), _Lexer.keyword),
    (_rule(r"colo-export=[^,]*,?"), _Lexer.keyword),
    (_rule(r"active-disk=[^,]*,?"), _Lexer.keyword),
    (_rule(r"hidden-disk=[^,]*,?"), _Lexer.keyword),
    (_rule(r"target=.*"), _Lexer.target),
    (_rule(r"[a-z][-a-z0-9]*=[^,],?"), _Lexer.unknown),
    (_rule(r"(?:raw|qcow2?|vhd):", r".*"), _Lexer.format_prefix),
    (_rule(r"(?:iscsi|e?nbd|drbd):", r".*"), _Lexer.script_prefix),
    (_rule(r"tapdisk:", r".*"), _Lexer.ignored_prefix),
    (_rule(r"tap2?:", r".*"), _Lexer.ignored_prefix),
    (_rule(r"aio:", r".*"), _Lexer.ignored_prefix),
    (_rule(r"ioemu:", r".*"), _Lexer.ignored_prefix),
    (_rule(r"file:", r".*"), _Lexer.ignored_prefix),
    (_rule(r"phy:", r".*"), _Lexer.ignored_prefix),
    (_rule(r"[a-z][a-z0-9]*:", r"(?:[^a-z0-9].*)?"), _Lexer.bad_prefix),
    (_rule(r"[^=,]*,|[^=,]+,?"), _Lexer.positional),
]


def xlu_disk_fields(spec: str) -> XluDisk:
    """The disk xl 4.17's ``xlu_disk_parse`` makes of ``spec``. Raises _Bad."""
    if "\x00" in spec:
        raise _Bad("NUL character in the spec")
    lexer = _Lexer(spec)
    lexer.run()
    if lexer.err is not None:
        raise _Bad(lexer.err)
    disk = lexer.disk
    if disk.format is None:
        disk.format = "raw"
    if disk.is_cdrom:
        disk.removable = 1
        disk.readwrite = 0
        if not disk.pdev_path:
            disk.format = "empty"
    if disk.vdev is None:
        raise _Bad("no vdev specified")
    if disk.pdev_path is None and not disk.removable:
        raise _Bad("no target specified (and device not removable)")
    return disk
