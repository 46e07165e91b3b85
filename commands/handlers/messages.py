"""Commands: imperative requests a user makes, as immutable named tuples."""

from __future__ import annotations

from typing import Any, NamedTuple


class CreateSnapshot(NamedTuple):
    """Take a snapshot of ``domain``: named, or from a snapshot config file.

    ``disk_only`` leaves a running domain's memory out (a crash-consistent snapshot).
    ``description`` overrides the config's; ``extra`` adds facts of xlsnap's own to the
    record (``wrap`` links a pre/post pair).
    """

    domain: str
    name: str | None = None
    config_file: str | None = None
    disk_only: bool = False
    description: str | None = None
    extra: dict[str, Any] | None = None


class RevertSnapshot(NamedTuple):
    """Bring the domain's disks, and memory if it has some, back to snapshot ``name``.

    ``state`` (``running``/``paused``) is the state after the revert (default: the
    state recorded with the snapshot); ``force`` restores a memory image whose digest
    differs from the ledger's (recorded).
    """

    domain: str
    name: str
    state: str | None = None
    force: bool = False


class DeleteSnapshot(NamedTuple):
    """Remove snapshot ``name`` and every file that belongs to it.

    ``metadata_only`` forgets it instead: the ledger and its metadata file let go of it,
    its tags, overlays and memory image stay where they are.
    """

    domain: str
    name: str
    metadata_only: bool = False
    reason: str | None = None      # why (a prune rule), recorded with the operation
    force: bool = False            # external: delete even when a chain was edited by hand
