"""Find a domain by name: ``<config-dir>/<name>.cfg`` read as data, its disks parsed."""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from typing import NamedTuple

from commands.config.disk_spec import DiskSpec, parse_disk_spec
from commands.config.xlcfg import XlConfig, load_xl_cfg
from commands.errors import ConfigError, UsageError

_DOMAIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:+-]{0,63}")
#: The one form xl reads a uuid in (``libxl_uuid_from_string``), in either letter case.
_UUID_FORM = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}\Z")
#: Domains without a ``uuid`` get this stable one, derived from their name.
NAMELESS_UUID_NS = uuid.uuid5(uuid.NAMESPACE_URL, "https://xlsnap.invalid/domain-name")


class DiskEntry(NamedTuple):
    """One disk of a domain and where its spec stands in the config text.

    ``span`` is None for a disk that a toolstack reported (a running domain's disk)
    and that no config file lists: such a disk cannot be rewritten in a config.
    """

    spec: DiskSpec
    span: tuple[int, int] | None


class Domain(NamedTuple):
    """A domain as its xl.cfg file describes it, or as a toolstack reports it.

    A running domain found by a toolstack (see ``commands.toolstacks``) may have no
    config file: then ``config_path`` and ``config`` are None.
    """

    name: str
    uuid: str
    uuid_declared: bool
    config_path: Path | None
    config: XlConfig | None
    disks: tuple[DiskEntry, ...]

    @property
    def key(self) -> str:
        """The ledger key: the uuid the config declares, else the domain's name."""
        return self.uuid if self.uuid_declared else f"name:{self.name}"

    def disk(self, vdev: str) -> DiskEntry:
        """The disk at ``vdev``; ``UsageError`` if the domain has none."""
        for entry in self.disks:
            if entry.spec.vdev == vdev:
                return entry
        known = ", ".join(e.spec.vdev for e in self.disks) or "none"
        raise UsageError(f"domain {self.name!r} has no disk {vdev!r} (its disks: {known})")


def check_domain_name(name: str) -> str:
    """Refuse names that could not be a config file's stem (``/``, ``..``, control chars)."""
    if not _DOMAIN_NAME.fullmatch(name) or ".." in name:
        raise UsageError(f"invalid domain name {name!r}")
    return name


def load_domain(config_dir: Path, name: str) -> Domain:
    """Read ``<config_dir>/<name>.cfg``; errors name the file and line."""
    check_domain_name(name)
    path = config_dir / f"{name}.cfg"
    if not os.path.lexists(path):  # a link that loops or dangles is read, and named
        raise UsageError(f"unknown domain {name!r}: no config file {path}")
    config = load_xl_cfg(path)
    declared = config.get_str("name")
    if declared is None:
        raise ConfigError(f"{path}: no 'name' setting")
    if declared != name:
        line = config.settings["name"].line
        raise ConfigError(f"{path}:{line}: names domain {declared!r}, not {name!r}")
    return Domain(
        name=name, uuid=_domain_uuid(config, name), uuid_declared="uuid" in config.settings,
        config_path=path, config=config, disks=_disks(config),
    )


def name_uuid(name: str) -> str:
    """The stable uuid of a domain known only by its name."""
    return str(uuid.uuid5(NAMELESS_UUID_NS, name))


def normal_uuid(raw: str) -> str | None:
    """``raw`` in lower case if it is a uuid in xl's form (8-4-4-4-12 hex digits), else None.

    Letter case does not make another domain: the ledger key, the domain folder and the
    messages all use this form.
    """
    return raw.lower() if _UUID_FORM.match(raw) else None


def check_uuid_binding(domain: Domain, bound_name: str | None) -> None:
    """Refuse ``domain`` when its ledger (found by its uuid) belongs to another name."""
    if bound_name is not None and bound_name != domain.name:
        raise UsageError(f"domain {domain.name!r} claims uuid {domain.uuid}, which the ledger "
                         f"binds to domain {bound_name!r}; two domains cannot share a uuid "
                         "(give one of them its own)")


def _domain_uuid(config: XlConfig, name: str) -> str:
    raw = config.get_str("uuid")
    if raw is None:
        return name_uuid(name)
    normal = normal_uuid(raw)
    if normal is None:
        line = config.settings["uuid"].line
        raise ConfigError(f"{config.path}:{line}: invalid uuid {raw!r} "
                          "(expected 8-4-4-4-12 hex digits)")
    return normal


def _disks(config: XlConfig) -> tuple[DiskEntry, ...]:
    single = config.settings.get("disk")
    if single is not None and isinstance(single.value, str):
        # xl_parse.c reads disks with xlu_cfg_get_list, which refuses a single string:
        # xl starts such a domain with no disk at all.
        raise config.error(single.line, "'disk' is a single string, not a list: xl attaches "
                                        "no disk from it (write disk = [ '...' ])")
    specs = config.get_list("disk")
    if not specs:
        return ()
    setting = config.settings["disk"]
    entries: list[DiskEntry] = []
    for text, span in zip(specs, setting.items, strict=True):
        try:
            spec = parse_disk_spec(text)
        except ConfigError as exc:
            line = config.line_of(span[0]) if hasattr(config, "line_of") else setting.line
            raise ConfigError(f"{config.path}:{line}: {exc}") from None
        entries.append(DiskEntry(spec, span))
    seen: set[str] = set()
    for entry in entries:          # a set, not list.count: 100,000 disks stay linear
        if entry.spec.vdev in seen:
            raise ConfigError(f"{config.path}:{setting.line}: disk {entry.spec.vdev!r} is "
                              "listed twice")
        seen.add(entry.spec.vdev)
    return tuple(entries)
