"""Which process owns an operation, and whether that process is still running."""

from __future__ import annotations

import os
import socket
from datetime import datetime, timezone
from typing import Any

Owner = dict[str, Any]

#: What ``owner_state`` can say of an owner.
ALIVE, GONE, REMOTE, UNKNOWN = "alive", "gone", "remote", "unknown"


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None


def process_start(pid: int) -> int | None:
    """Start time of process ``pid`` in clock ticks after boot; None if there is none."""
    stat = _read(f"/proc/{pid}/stat")
    if stat is None:
        return None
    # The command name (field 2) is in parentheses and may hold spaces or ')'.
    fields = stat[stat.rfind(")") + 2:].split()
    try:
        return int(fields[19])  # field 22 overall; fields[0] is field 3
    except (IndexError, ValueError):
        return None


def boot_id() -> str:
    """This boot's id ('' when the kernel does not tell)."""
    return (_read("/proc/sys/kernel/random/boot_id") or "").strip()


def _boot_time() -> float | None:
    for line in (_read("/proc/stat") or "").splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    return None


def current_owner() -> Owner:
    """The owner record of this process.

    An owner is ``{"host", "pid", "start", "boot_id", "since"}``: ``start`` is the
    process's start time in clock ticks after boot (field 22 of ``/proc/PID/stat``) and
    ``boot_id`` the kernel's ``/proc/sys/kernel/random/boot_id``, so a pid reused after
    the owner died, or after a reboot, is not taken for the owner. ``since`` is the
    start as a wall-clock time (UTC, ISO 8601), for messages.
    """
    pid = os.getpid()
    start = process_start(pid)
    booted = _boot_time()
    since = None
    if start is not None and booted is not None:
        seconds = booted + start / os.sysconf("SC_CLK_TCK")
        since = datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="seconds")
    return {"host": socket.gethostname(), "pid": pid, "start": start, "boot_id": boot_id(),
            "since": since}


def owner_state(owner: Owner | None) -> str:
    """``alive``, ``gone``, ``remote`` (another host: cannot be checked) or ``unknown``.

    An operation recorded before owners were (its events have none) is ``unknown``.
    """
    if not owner or owner.get("pid") is None:
        return UNKNOWN
    if owner.get("host") != socket.gethostname():
        return REMOTE
    if owner.get("boot_id") and owner["boot_id"] != boot_id():
        return GONE
    start = process_start(int(owner["pid"]))
    if start is None or (owner.get("start") is not None and start != owner["start"]):
        return GONE
    return ALIVE


def describe(owner: Owner, user: str | None = None) -> str:
    """``by USER pid N since T`` (with ``on HOST`` for another host)."""
    who = f"by {user} " if user else ""
    where = "" if owner.get("host") == socket.gethostname() else f"on {owner.get('host')} "
    since = f" since {owner['since']}" if owner.get("since") else ""
    return f"{who}{where}pid {owner.get('pid')}{since}"
