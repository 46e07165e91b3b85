"""libxl's lock on a device model's QMP socket, taken as libxl takes it."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator

from commands.drivers.qmp_errors import QmpBusy

XEN_LIB_DIR = "/var/lib/xen"
#: Seconds to wait for libxl to let go of the lock.
LOCK_WAIT = 120.0


def xen_lib_dir() -> str:
    return os.environ.get("XLSNAP_XEN_LIB_DIR") or XEN_LIB_DIR


def lock_path(lib_dir: str, domid: int, uuid: str) -> str:
    """libxl__userdata_path(domid, "qmp-socket-lock", "l")."""
    return os.path.join(lib_dir, f"userdata-l.{int(domid)}.{uuid.lower()}.qmp-socket-lock")


class QmpSocketLock:
    """The lock of one domain's QMP socket; ``uuid_of`` finds the domain's uuid (None when
    the domain is gone: then nothing is locked, as libxl would find no domain either).

    libxl talks to ``qmp-libxl-<domid>`` only while it holds an exclusive ``flock`` on
    ``<XEN_LIB_DIR>/userdata-l.<domid>.<uuid>.qmp-socket-lock`` (Xen 4.17.5:
    libxl_internal.c:617-620 ``libxl__ev_qmplock_init``, :631 ``libxl__userdata_path``,
    libxl_dom.c:1221 the name; the file is opened ``O_RDWR|O_CREAT`` 0666, locked with
    ``flock(LOCK_EX)``, and the lock counts only if the file at the path is still the one
    locked). QEMU serves one QMP client at a time, and an HVM ``xl save`` fails when
    another client holds the socket, so xlsnap takes the same lock, waiting for it,
    around every conversation with a Xen device model. ``XLSNAP_XEN_LIB_DIR`` replaces
    ``/var/lib/xen`` (for tests).
    """

    def __init__(self, domid: int, uuid_of: Callable[[], str | None], lib_dir: str | None = None,
                 wait: float = LOCK_WAIT) -> None:
        self.domid = domid
        self.uuid_of = uuid_of
        self.lib_dir = lib_dir or xen_lib_dir()
        self.wait = wait
        self._uuid: str | None = None
        self.waited_ms = 0.0

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Hold the lock for the block; waits up to ``wait`` seconds for it (QmpBusy)."""
        if not os.path.isdir(self.lib_dir):
            yield  # no libxl on this host to share the socket with
            return
        if self._uuid is None:
            self._uuid = self.uuid_of()
        if not self._uuid:
            yield
            return
        path = lock_path(self.lib_dir, self.domid, self._uuid)
        fd = self._acquire(path)
        try:
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the flock

    def _acquire(self, path: str) -> int:
        start = time.monotonic()
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
            try:
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if time.monotonic() - start > self.wait:
                            raise QmpBusy(f"libxl's QMP lock {path} has been held by another "
                                          f"process (xl, libvirt) for over {self.wait:g}s",
                                          "Locked") from None
                        time.sleep(0.02)
                if _same_file(fd, path):
                    self.waited_ms = round((time.monotonic() - start) * 1000.0, 3)
                    return fd
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)  # removed or replaced while we waited: lock the new one


def _same_file(fd: int, path: str) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    fst = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (fst.st_dev, fst.st_ino)
