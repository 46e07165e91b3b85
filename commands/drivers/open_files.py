"""Which processes have a file open, read from ``/proc/<pid>/fd`` (root sees them all).

Xen's qdisk backend opens images with file locking off, so qemu-img's own lock check
does not see it: this does.
"""

from __future__ import annotations

import os
from collections.abc import Iterable


def holders(paths: Iterable[str]) -> dict[str, list[int]]:
    """The processes (other than this one) that have each of ``paths`` open."""
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
                pids = found.setdefault(wanted[target], []) if target in wanted else None
                if pids is not None and int(entry.name) not in pids:
                    pids.append(int(entry.name))
    return found
