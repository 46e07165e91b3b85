"""The sha256 of a memory image (``xl save`` output, a QEMU migration stream), taken once.

Hashing waits until the guest runs again: inside the pause it would lengthen it.
"""

from __future__ import annotations

import os
from typing import Any

from commands.state.atomic_files import sha256_file

_DIGESTS: dict[tuple[str, int, int, int], str] = {}


def digest(path: str) -> tuple[str, int]:
    """``(sha256, size)`` of a memory image, computed once per version of the file (the
    metadata file, the ledger record and the step result share it)."""
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
