"""Memory images: where they go, and their digest recorded.

A memory image (``xl save`` output or a QEMU migration stream) is written to
``<home>/<uuid>/<name>.save``, a 0600 file in a 0700 folder, never through a link: QEMU's
is created by the QMP driver with ``O_CREAT|O_EXCL`` (mode 0600) and its descriptor
handed to QEMU; ``xl save`` creates its own under umask 077, after xlsnap checked that
nothing is at that path in its private folder. (Creating the file first and letting a
tool truncate it would make ext4 flush it on close, lengthening the pause.) Its sha256
is taken after the domain runs again (hashing inside the pause, even in a thread while
QEMU writes, lengthens it), and memoised, so the metadata file, the ledger record and
the step result hash it once.
"""

from __future__ import annotations

import os
from typing import Any

from commands.state.atomic_files import sha256_file

_DIGESTS: dict[tuple[str, int, int, int], str] = {}


def digest(path: str) -> tuple[str, int]:
    """``(sha256, size)`` of a memory image, computed once per version of the file."""
    st = os.stat(path)
    key = (os.path.realpath(path), st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        _DIGESTS[key] = sha256_file(path)
    return _DIGESTS[key], st.st_size


def with_memory_digest(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with ``memory_sha256``/``memory_size`` filled from its memory image."""
    path = record.get("memory_file")
    if not path or record.get("memory_sha256") or not os.path.exists(path):
        return record
    sha, size = digest(path)
    return {**record, "memory_sha256": sha, "memory_size": size}
