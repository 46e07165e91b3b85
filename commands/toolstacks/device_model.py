"""A Xen domain's device model as a process: which one it is, its end, who has an image open."""

from __future__ import annotations

import os
import time

from commands.drivers.open_files import holders
from commands.toolstacks.base import peer_process

#: Seconds to wait for a device model to exit after ``xl destroy``.
DEFAULT_EXIT_WAIT = 30.0


def exit_wait() -> float:
    """``XLSNAP_DM_EXIT_TIMEOUT`` seconds, default 30 (not a user error when bad: default)."""
    try:
        value = float(os.environ.get("XLSNAP_DM_EXIT_TIMEOUT", "") or DEFAULT_EXIT_WAIT)
    except ValueError:
        return DEFAULT_EXIT_WAIT
    return value if value > 0 else DEFAULT_EXIT_WAIT


def socket_process(socket_path: str) -> tuple[int, int] | None:
    """``(pid, start time)`` of the process serving a QMP socket, or None if none does."""
    try:
        pid = peer_process(socket_path)[0]
    except OSError:
        return None
    start = _start_time(pid)
    return None if start is None else (pid, start)


def alive(pid: int, start: int) -> bool:
    """True while process ``pid`` (started at ``start`` clock ticks) has not ended: a
    zombie has ended, and another process under a reused pid is not it."""
    return _start_time(pid) == start


def wait_exit(pid: int, start: int, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for the process to end; True when it did.

    ``xl destroy`` has libxl send the device model SIGHUP and return without waiting for it
    (libxl_dm.c:3470, libxl_aoutils.c:644 in 4.17.5), and Xen's qdisk backend opens images
    with file locking off, so nothing stops qemu-img from writing an image that QEMU still
    has open and will write again when it exits. So before qemu-img touches a Xen domain's
    images: learn the device model's pid before destroying it (``SO_PEERCRED`` of its QMP
    socket), wait for that process to end, and check that no process has the images open.
    """
    deadline = time.monotonic() + timeout
    while alive(pid, start):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def wait_released(what: str, process: tuple[int, int] | None, paths: list[str],
                  timeout: float) -> dict[str, object]:
    """Wait for ``process`` to end and for ``paths`` to be open nowhere; else OSError."""
    start = time.monotonic()
    if process is not None and not wait_exit(*process, timeout):
        raise OSError(f"the device model of {what} (pid {process[0]}) did not exit within "
                      f"{timeout:g}s after 'xl destroy'; its images are still open, so none "
                      "was touched")
    while True:
        open_by = holders(paths)
        if not open_by:
            return {"device_model_pid": process[0] if process else None,
                    "waited_ms": round((time.monotonic() - start) * 1000.0, 3)}
        if time.monotonic() - start > timeout:
            said = "; ".join(f"{p} by pid {', '.join(map(str, pids))}"
                             for p, pids in open_by.items())
            raise OSError(f"images of {what} are still open ({said}) {timeout:g}s after 'xl "
                          "destroy'; none was touched")
        time.sleep(0.05)


def _start_time(pid: int) -> int | None:
    """Field 22 of ``/proc/<pid>/stat``; None when the process is gone or a zombie."""
    try:
        raw = open(f"/proc/{pid}/stat", "rb").read().decode(errors="replace")
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])
