"""Who is acting: captured once per process and carried by every event."""

from __future__ import annotations

import os
import pwd
import socket
import sys

from ledger.storage.location import scrub

#: xlsnap's version; pyproject.toml reads it from here. (A constant: importlib.metadata
#: alone costs ~8 ms at every start.)
VERSION = "0.1.0"


def xlsnap_version() -> str:
    """The xlsnap version that every event records."""
    return VERSION


def current_actor(argv: list[str] | None = None) -> dict[str, object]:
    """Describe the acting user, host, process and command line (a ledger URL's
    password removed: the actor is recorded in events)."""
    if _service_actor is not None:
        return {**_service_actor, "argv": [scrub(a) for a in (sys.argv if argv is None else argv)]}
    uid = os.getuid()
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = str(uid)
    return {
        "uid": uid,
        "user": user,
        "sudo_user": os.environ.get("SUDO_USER"),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "argv": [scrub(a) for a in (sys.argv if argv is None else argv)],
        "version": xlsnap_version(),
    }


#: The actor a service's worker acts as (set by ``act_as``), instead of this process's.
_service_actor: dict[str, object] | None = None


def act_as(actor: dict[str, object]) -> None:
    """Make ``current_actor`` describe ``actor`` (xlsnapd's worker: the peer it serves)."""
    global _service_actor
    _service_actor = dict(actor)
