"""SHA-256 of a file while another process appends to it, read right behind the writer.

QEMU writes a memory image sequentially and never rewrites what it wrote, so a thread
can hash the bytes as they land (from the page cache) and be done moments after the
writer is. Hashing the 256 MiB afterwards would add its whole time to the command.

    tail = TailDigest("/var/lib/xlsnap/<uuid>/s1.save")   # the file exists, empty
    ...                                                  # the writer writes, then stops
    sha256, size = tail.finish()                         # or tail.abandon()
"""

from __future__ import annotations

import hashlib
import os
import threading

CHUNK = 1 << 20
IDLE_WAIT = 0.005


class TailDigest:
    """Hashes ``path`` from its start in a thread until ``finish()`` says the writer is done."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        self._hash = hashlib.sha256()
        self._size = 0
        self._error: OSError | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="xlsnap-tail-digest",
                                        daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        try:
            while True:
                final = self._done.is_set()   # seen before the read: an empty read then is EOF
                chunk = os.read(self._fd, CHUNK)
                if chunk:
                    self._hash.update(chunk)
                    self._size += len(chunk)
                elif final:
                    return
                else:
                    self._done.wait(IDLE_WAIT)
        except OSError as exc:
            self._error = exc

    def finish(self, timeout: float = 60.0) -> tuple[str, int] | None:
        """``(sha256, size)`` of the whole file once the writer has stopped, or ``None``
        if it could not be read in time (the caller then hashes the file itself)."""
        self._done.set()
        self._thread.join(timeout)
        alive = self._thread.is_alive()
        if not alive:
            os.close(self._fd)
        if alive or self._error is not None:
            return None
        return self._hash.hexdigest(), self._size

    def abandon(self) -> None:
        """Stop reading (the write failed)."""
        self.finish(timeout=5.0)
