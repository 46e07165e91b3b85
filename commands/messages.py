"""Commands: imperative requests a user makes, as frozen dataclasses."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CreateSnapshot:
    """Take a snapshot of ``domain``: named, or from a snapshot config file."""

    domain: str
    name: str | None = None
    config_file: str | None = None


@dataclass(frozen=True)
class RevertSnapshot:
    """Bring the domain's disks back to snapshot ``name``."""

    domain: str
    name: str


@dataclass(frozen=True)
class DeleteSnapshot:
    """Remove snapshot ``name`` and every file that belongs to it."""

    domain: str
    name: str
