"""Which host holds a memory image: one saved under another host's home folder cannot be
restored here unless that folder is on storage both hosts share."""

from __future__ import annotations

import socket


def elsewhere_message(path: str, name: str, taken_on: str | None) -> str:
    """Why the memory image ``path`` of snapshot ``name`` cannot be restored on this host."""
    here = socket.gethostname()
    if taken_on and taken_on != here:
        return (f"memory image {path} of snapshot {name!r} is not readable on this host "
                f"({here}): it was saved on host {taken_on}; revert from {taken_on}, or put "
                "the home folder on storage every host mounts (README, 'A fleet ledger on "
                "PostgreSQL')")
    return f"memory image {path} of snapshot {name!r} is missing"
