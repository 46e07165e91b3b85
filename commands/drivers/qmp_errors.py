"""The errors of the QMP driver: what QEMU refused, and why a conversation failed."""

from __future__ import annotations

from typing import Any


class QmpError(Exception):
    """QEMU refused a command; ``error_class`` and ``desc`` are QMP's own words."""

    def __init__(self, desc: str, error_class: str = "GenericError",
                 command: str = "", arguments: dict[str, Any] | None = None) -> None:
        super().__init__(desc)
        self.desc = desc
        self.error_class = error_class
        self.command = command
        self.arguments = arguments or {}

    def summary(self) -> dict[str, object]:
        """The part worth recording in the ledger."""
        return {"command": self.command, "arguments": self.arguments,
                "error_class": self.error_class, "desc": self.desc}


class QmpUnavailable(QmpError):
    """No QMP conversation: socket missing, refused, busy (no greeting) or connection lost."""


class QmpBusy(QmpUnavailable):
    """Connected, but no greeting in time: QEMU is serving another client."""


class QmpTimeout(QmpUnavailable):
    """A command, job or migration gave no answer in time (its outcome is unknown)."""


class QmpJobFailed(QmpError):
    """A job (``snapshot-save``/``-load``/``-delete``) concluded with an error."""


class QmpMigrationFailed(QmpError):
    """A migration (to or from a file) ended in status ``failed`` or ``cancelled``."""


class AmbiguousTag(QmpError):
    """A tag QEMU would resolve to another snapshot: it is also that snapshot's ID.

    ``snapshot-load`` finds a disk's snapshot by ID first, then by name (qcow2's
    ``find_snapshot_by_id_or_name``), and takes no ID of its own: a snapshot named ``1``
    cannot be loaded while another snapshot on the same disk has the ID ``1``.
    """


class UnsafePath(ValueError):
    """A path QEMU would be given that is not absolute."""
