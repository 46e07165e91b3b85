"""Which processes have a file open for writing, read from ``/proc/<pid>/fd`` and
``fdinfo`` (root sees them all).

Xen's qdisk backend opens images read-write with file locking off, so qemu-img's own
lock check does not see it: this does. A reader (``qemu-img info``) is not counted.
"""

from __future__ import annotations

import os
from collections.abc import Iterable


def holders(paths: Iterable[str]) -> dict[str, list[int]]:
    """The processes (other than this one) that have each of ``paths`` open for writing."""
    wanted = {os.path.realpath(p): p for p in paths}
    found: dict[str, list[int]] = {}
    me = os.getpid()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            fds = os.scandir(f"/proc/{entry.name}/fd")
        except OSError:
            continue
        with fds:
            for fd in fds:
                try:
                    target = os.readlink(fd.path)
                except OSError:
                    continue
                if target not in wanted or not _writable(entry.name, fd.name):
                    continue
                pids = found.setdefault(wanted[target], [])
                if int(entry.name) not in pids:
                    pids.append(int(entry.name))
    return found


def _writable(pid: str, fd: str) -> bool:
    """True when descriptor ``fd`` of ``pid`` was opened for writing (or if unreadable)."""
    try:
        text = open(f"/proc/{pid}/fdinfo/{fd}").read()
    except OSError:
        return True
    for line in text.splitlines():
        if line.startswith("flags:"):
            return int(line.split()[1], 8) & 0o3 != 0
    return True
