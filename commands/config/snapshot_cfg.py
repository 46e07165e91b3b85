"""The snapshot config file of the seed design (xl.cfg syntax), read as data.

Keys: ``name``, ``description``, ``creationtime``, ``type`` (internal|external),
``memory`` (yes|no|/abs/path) and ``disk``, a list of
``VDEV[=OVERLAY][,type=internal|external|qcow2][,format=qcow2]`` entries.
"""

from __future__ import annotations

import os
import re
from typing import NamedTuple

from commands.config.xlcfg import Setting, XlConfig, load_xl_cfg, quoted
from commands.errors import ConfigError

KEYS = ("name", "description", "creationtime", "type", "memory", "disk")
KINDS = ("internal", "external")
OVERLAY_FORMATS = ("qcow2",)
_VDEV_RE = re.compile(r"[A-Za-z0-9]+\Z")
_WS = " \t\n\r"
_MAX_EPOCH = 2**63 - 1


class DiskRequest(NamedTuple):
    """What to do with one disk: its kind (None = the snapshot's) and overlay path."""

    vdev: str
    kind: str | None
    overlay: str | None
    overlay_format: str = "qcow2"


class SnapshotConfig(NamedTuple):
    """A snapshot config file's request; creation_time is recorded, never trusted."""

    name: str | None
    description: str
    creation_time: int | None
    type: str | None
    memory: str | None
    disks: tuple[DiskRequest, ...]


def _bad_path(path: str) -> bool:
    """True unless ``path`` is absolute and usable as a file name."""
    return not os.path.isabs(path) or "\x00" in path or "\n" in path


def _creation_time(cfg: XlConfig) -> int | None:
    """``creationtime`` read as xl reads a number (``xlu_cfg_get_long``), not negative."""
    setting = cfg.settings.get("creationtime")
    if setting is None:
        return None
    try:
        value = cfg.get_long("creationtime") if isinstance(setting.value, str) else None
    except ConfigError:
        value = None
    if value is None or not 0 <= value <= _MAX_EPOCH:
        raise cfg.error(setting.line, "creationtime must be whole seconds since the epoch")
    return value


def _choice(cfg: XlConfig, key: str, allowed: tuple[str, ...]) -> str | None:
    value = cfg.get_str(key)
    if value is not None and value not in allowed:
        raise cfg.error(cfg.settings[key].line,
                        f"{key} must be {' or '.join(repr(a) for a in allowed)}, "
                        f"not {quoted(value)}")
    return value


def _memory(cfg: XlConfig) -> str | None:
    value = cfg.get_str("memory")
    if value is not None and value not in ("yes", "no") and _bad_path(value):
        raise cfg.error(cfg.settings["memory"].line,
                        f"memory must be 'yes', 'no' or an absolute path, not {quoted(value)}")
    return value


def _disk(cfg: XlConfig, entry: str, line: int) -> DiskRequest:
    """One ``disk`` entry; errors name the entry's line."""
    def bad(why: str) -> ConfigError:
        return cfg.error(line, f"bad disk entry {quoted(entry)}: {why}")

    head, *options = entry.split(",")
    vdev, has_target, target = (part.strip(_WS) for part in head.partition("="))
    if not _VDEV_RE.match(vdev):
        raise bad("expected VDEV[=OVERLAY] first, VDEV like xvda or hda")
    kind: str | None = None
    for option in options:
        key, _, value = (part.strip(_WS) for part in option.partition("="))
        if key not in ("type", "format") or not value:
            raise bad(f"unknown option {quoted(option.strip(_WS))} "
                      "(expected type=internal|external|qcow2 or format=qcow2)")
        if key == "type" and value in KINDS:
            if kind is not None and kind != value:
                raise bad("type given twice")
            kind = value
        elif value not in OVERLAY_FORMATS:
            raise bad(f"unsupported overlay format {quoted(value)} (only qcow2)")
    if not has_target:
        return DiskRequest(vdev=vdev, kind=kind, overlay=None)
    if kind == "internal":
        raise bad("an internal snapshot takes no overlay path")
    if _bad_path(target):
        raise bad("the overlay must be an absolute path")
    return DiskRequest(vdev=vdev, kind="external", overlay=target)


def _disks(cfg: XlConfig) -> tuple[DiskRequest, ...]:
    entries = cfg.get_list("disk")
    setting: Setting | None = cfg.settings.get("disk")
    spans = setting.items if setting is not None else ()
    disks: list[DiskRequest] = []
    seen: set[str] = set()
    for entry, (start, _end) in zip(entries, spans):
        line = cfg.line_of(start)
        disk = _disk(cfg, entry, line)
        if disk.vdev in seen:
            raise cfg.error(line, f"disk {disk.vdev!r} is listed twice")
        seen.add(disk.vdev)
        disks.append(disk)
    return tuple(disks)


def parse_snapshot_cfg(cfg: XlConfig) -> SnapshotConfig:
    """Validate a parsed snapshot config. Raises ConfigError naming file and line."""
    for key, setting in cfg.settings.items():
        if key not in KEYS:
            raise cfg.error(setting.line,
                            f"unknown key {key!r} (expected one of {', '.join(KEYS)})")
    return SnapshotConfig(
        name=cfg.get_str("name"),
        description=cfg.get_str("description", "") or "",
        creation_time=_creation_time(cfg),
        type=_choice(cfg, "type", KINDS),
        memory=_memory(cfg),
        disks=_disks(cfg),
    )


def load_snapshot_cfg(path: str | os.PathLike[str]) -> SnapshotConfig:
    """Read, parse and validate the snapshot config file at ``path``."""
    return parse_snapshot_cfg(load_xl_cfg(path))
