"""Xen 4.17's own config and disk-spec parsers (libxlutil), called through ctypes.

This is the oracle of the differential tests: Debian's ``libxenmisc4.17`` ships
``/usr/lib/x86_64-linux-gnu/libxlutil.so.4.17``, which loads without a hypervisor.
The API is ``/usr/include/libxlutil.h``; ``libxl_device_disk``'s layout is
``/usr/include/_libxl_types.h`` (Xen 4.17, ``struct libxl_device_disk``) and
``libxl_defbool`` is ``{int val}`` (``libxl.h``: 0 default, >0 true, <0 false).

``available()`` is False when the library is absent; the tests skip then.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import NamedTuple

LIBRARY = "libxlutil.so.4.17"

XLU_STRING, XLU_LIST = 0, 1  # enum XLU_ConfigValueType (libxlutil.h)
# libxl_disk_format / libxl_disk_backend / libxl_disk_specification (_libxl_types.h)
FORMATS = {0: None, 1: "qcow", 2: "qcow2", 3: "vhd", 4: "raw", 5: "empty", 6: "qed"}
BACKENDS = {0: None, 1: "phy", 2: "tap", 3: "qdisk", 4: "standalone"}
SPECIFICATIONS = {0: None, 1: "xen", 2: "virtio"}


class _Disk(ctypes.Structure):
    """``libxl_device_disk`` of Xen 4.17 (_libxl_types.h lines 874-899), field by field."""

    _fields_ = [
        ("backend_domid", ctypes.c_uint32),
        ("backend_domname", ctypes.c_char_p),
        ("pdev_path", ctypes.c_char_p),
        ("vdev", ctypes.c_char_p),
        ("backend", ctypes.c_int),
        ("format", ctypes.c_int),
        ("script", ctypes.c_char_p),
        ("removable", ctypes.c_int),
        ("readwrite", ctypes.c_int),
        ("is_cdrom", ctypes.c_int),
        ("direct_io_safe", ctypes.c_bool),
        ("discard_enable", ctypes.c_int),
        ("specification", ctypes.c_int),
        ("transport", ctypes.c_int),
        ("irq", ctypes.c_uint32),
        ("base", ctypes.c_uint64),
        ("colo_enable", ctypes.c_int),
        ("colo_restore_enable", ctypes.c_int),
        ("colo_host", ctypes.c_char_p),
        ("colo_port", ctypes.c_int),
        ("colo_export", ctypes.c_char_p),
        ("active_disk", ctypes.c_char_p),
        ("hidden_disk", ctypes.c_char_p),
        ("trusted", ctypes.c_int),
        ("_slack", ctypes.c_char * 256),  # room in case the build's struct is larger
    ]


class XluDisk(NamedTuple):
    """The fields of a parsed disk that xlu_disk_parse sets (None = not set)."""

    pdev_path: str | None
    vdev: str | None
    format: str | None
    backend: str | None
    script: str | None
    readwrite: int
    is_cdrom: int
    removable: int
    direct_io_safe: bool
    discard: bool | None
    specification: str | None
    backend_domname: str | None
    colo: bool | None
    colo_host: str | None
    colo_port: int
    colo_export: str | None
    active_disk: str | None
    hidden_disk: str | None
    trusted: bool | None


_lib: ctypes.CDLL | None = None
_libc: ctypes.CDLL | None = None


def _load() -> ctypes.CDLL | None:
    global _lib, _libc
    if _lib is not None:
        return _lib
    try:
        lib = ctypes.CDLL(LIBRARY)
    except OSError:
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.tmpfile.restype = ctypes.c_void_p
    libc.fclose.argtypes = [ctypes.c_void_p]
    libc.rewind.argtypes = [ctypes.c_void_p]
    libc.fread.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_void_p]
    libc.fread.restype = ctypes.c_size_t
    libc.fflush.argtypes = [ctypes.c_void_p]
    lib.xlu_cfg_init.restype = ctypes.c_void_p
    lib.xlu_cfg_init.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.xlu_cfg_readdata.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    lib.xlu_cfg_destroy.argtypes = [ctypes.c_void_p]
    lib.xlu_cfg_get_string.argtypes = [ctypes.c_void_p, ctypes.c_char_p,
                                       ctypes.POINTER(ctypes.c_char_p), ctypes.c_int]
    lib.xlu_cfg_get_long.argtypes = [ctypes.c_void_p, ctypes.c_char_p,
                                     ctypes.POINTER(ctypes.c_long), ctypes.c_int]
    lib.xlu_cfg_get_list.argtypes = [ctypes.c_void_p, ctypes.c_char_p,
                                     ctypes.POINTER(ctypes.c_void_p),
                                     ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    lib.xlu_cfg_get_listitem.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.xlu_cfg_get_listitem.restype = ctypes.c_char_p
    lib.xlu_cfg_get_listitem2.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.xlu_cfg_get_listitem2.restype = ctypes.c_void_p
    lib.xlu_cfg_value_type.argtypes = [ctypes.c_void_p]
    lib.xlu_cfg_value_get_string.argtypes = [ctypes.c_void_p, ctypes.c_void_p,
                                             ctypes.POINTER(ctypes.c_char_p), ctypes.c_int]
    lib.xlu_cfg_value_get_list.argtypes = [ctypes.c_void_p, ctypes.c_void_p,
                                           ctypes.POINTER(ctypes.c_void_p), ctypes.c_int]
    lib.xlu_disk_parse.argtypes = [ctypes.c_void_p, ctypes.c_int,
                                   ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(_Disk)]
    _lib, _libc = lib, libc
    return lib


def available() -> bool:
    """True when libxlutil.so.4.17 loads."""
    return _load() is not None


CfgValue = str | tuple["CfgValue", ...]


class Config:
    """One XLU_Config: ``Config(data)`` parses; ``ok`` says whether xl accepted it."""

    def __init__(self, data: bytes) -> None:
        lib = _load()
        assert lib is not None and _libc is not None
        self._lib = lib
        self._report = _libc.tmpfile()
        self._cfg = lib.xlu_cfg_init(self._report, b"test.cfg")
        self.ok = lib.xlu_cfg_readdata(self._cfg, data, len(data)) == 0

    def close(self) -> None:
        if self._cfg:
            self._lib.xlu_cfg_destroy(self._cfg)
            self._cfg = None
        if self._report and _libc is not None:
            _libc.fclose(self._report)
            self._report = None

    def __enter__(self) -> Config:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def messages(self) -> str:
        """What libxlu printed to its report stream."""
        assert _libc is not None
        _libc.fflush(self._report)
        _libc.rewind(self._report)
        buf = ctypes.create_string_buffer(65536)
        n = _libc.fread(buf, 1, 65535, self._report)
        return buf.raw[:n].decode("utf-8", "replace")

    def keys(self) -> list[str]:
        """The names set, newest first, each once (walks ``XLU_Config.settings``).

        libxlu_internal.h: ``struct XLU_Config {XLU_ConfigSetting *settings; ...}`` and
        ``XLU_ConfigSetting {next, char *name, value, op, lineno}``.
        """
        names: list[str] = []
        node = ctypes.cast(self._cfg, ctypes.POINTER(ctypes.c_void_p))[0]
        while node:
            fields = ctypes.cast(node, ctypes.POINTER(ctypes.c_void_p))
            name = ctypes.cast(fields[1], ctypes.c_char_p).value or b""
            text = name.decode("utf-8", "surrogateescape")
            if text not in names:
                names.append(text)
            node = fields[0]
        return names

    def get_string(self, key: str) -> str | None:
        """xlu_cfg_get_string: the value, or None (unset or a list)."""
        out = ctypes.c_char_p()
        if self._lib.xlu_cfg_get_string(self._cfg, key.encode(), ctypes.byref(out), 1):
            return None
        return (out.value or b"").decode("utf-8", "surrogateescape")

    def get_long(self, key: str) -> int | None:
        """xlu_cfg_get_long: the number, or None when xl refuses it."""
        out = ctypes.c_long()
        if self._lib.xlu_cfg_get_long(self._cfg, key.encode(), ctypes.byref(out), 1):
            return None
        return out.value

    def get_value(self, key: str) -> CfgValue | None:
        """The whole value of ``key`` (nested lists as tuples), or None when unset."""
        if self.get_string(key) is not None:
            return self.get_string(key)
        lst = ctypes.c_void_p()
        count = ctypes.c_int()
        if self._lib.xlu_cfg_get_list(self._cfg, key.encode(), ctypes.byref(lst),
                                      ctypes.byref(count), 1):
            return None
        return self._list(lst.value, count.value)

    def _list(self, lst: int | None, count: int) -> tuple[CfgValue, ...]:
        items: list[CfgValue] = []
        for i in range(count):
            value = self._lib.xlu_cfg_get_listitem2(lst, i)
            if self._lib.xlu_cfg_value_type(value) == XLU_STRING:
                text = ctypes.c_char_p()
                self._lib.xlu_cfg_value_get_string(self._cfg, value, ctypes.byref(text), 1)
                items.append((text.value or b"").decode("utf-8", "surrogateescape"))
            else:
                sub = ctypes.c_void_p()
                self._lib.xlu_cfg_value_get_list(self._cfg, value, ctypes.byref(sub), 1)
                items.append(self._list(sub.value, _nvalues(sub.value)))
        return tuple(items)

    def list_strings(self, key: str) -> tuple[str | None, ...] | None:
        """xlu_cfg_get_list + xlu_cfg_get_listitem (None for an item that is a list)."""
        lst = ctypes.c_void_p()
        count = ctypes.c_int()
        if self._lib.xlu_cfg_get_list(self._cfg, key.encode(), ctypes.byref(lst),
                                      ctypes.byref(count), 1):
            return None
        out: list[str | None] = []
        for i in range(count.value):
            item = self._lib.xlu_cfg_get_listitem(lst, i)
            out.append(None if item is None else item.decode("utf-8", "surrogateescape"))
        return tuple(out)


def _nvalues(lst: int | None) -> int:
    """XLU_ConfigList.nvalues (libxlu_internal.h: ``int avalues, nvalues; values``)."""
    assert lst is not None
    return ctypes.cast(lst, ctypes.POINTER(ctypes.c_int))[1]


def _defbool(val: int) -> bool | None:
    return None if val == 0 else val > 0


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode("utf-8", "surrogateescape")


def parse_disk(spec: str) -> XluDisk | None:
    """xlu_disk_parse of one spec: the disk, or None when xl refuses it."""
    with Config(b"") as cfg:
        disk = _Disk()  # all zero, as libxl_device_disk_init leaves it
        specs = (ctypes.c_char_p * 1)(spec.encode("utf-8", "surrogateescape"))
        if cfg._lib.xlu_disk_parse(cfg._cfg, 1, specs, ctypes.byref(disk)):
            return None
        return XluDisk(
            pdev_path=_text(disk.pdev_path), vdev=_text(disk.vdev),
            format=FORMATS[disk.format], backend=BACKENDS[disk.backend],
            script=_text(disk.script), readwrite=disk.readwrite, is_cdrom=disk.is_cdrom,
            removable=disk.removable, direct_io_safe=bool(disk.direct_io_safe),
            discard=_defbool(disk.discard_enable),
            specification=SPECIFICATIONS[disk.specification],
            backend_domname=_text(disk.backend_domname), colo=_defbool(disk.colo_enable),
            colo_host=_text(disk.colo_host), colo_port=disk.colo_port,
            colo_export=_text(disk.colo_export), active_disk=_text(disk.active_disk),
            hidden_disk=_text(disk.hidden_disk), trusted=_defbool(disk.trusted),
        )
