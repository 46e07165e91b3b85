"""Who is acting: captured once per process and carried by every event."""

from __future__ import annotations

import os
import pwd
import socket
import sys
from importlib import metadata


def xlsnap_version() -> str:
    """The installed xlsnap version, or ``"dev"`` when running from a checkout."""
    try:
        return metadata.version("xlsnap")
    except metadata.PackageNotFoundError:
        return "dev"


def current_actor(argv: list[str] | None = None) -> dict[str, object]:
    """Describe the acting user, host, process and command line."""
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
        "argv": list(sys.argv if argv is None else argv),
        "version": xlsnap_version(),
    }
