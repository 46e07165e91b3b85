"""TailDigest hashes a file while another writer appends to it."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

from commands.drivers.tail_digest import TailDigest
from commands.memory import digest, remember


def _append_slowly(path: Path, chunks: list[bytes], started: threading.Event) -> None:
    with path.open("ab", buffering=0) as handle:
        started.set()
        for chunk in chunks:
            handle.write(chunk)
            time.sleep(0.002)


def test_the_digest_follows_a_writer_to_the_end(tmp_path: Path) -> None:
    path = tmp_path / "mem.save"
    path.touch()
    chunks = [os.urandom(n) for n in (1, 4096, 3 << 20, 17, 1 << 20, 5)]
    tail = TailDigest(str(path))
    started = threading.Event()
    writer = threading.Thread(target=_append_slowly, args=(path, chunks, started))
    writer.start()
    started.wait()
    writer.join()
    whole = b"".join(chunks)
    assert tail.finish() == (hashlib.sha256(whole).hexdigest(), len(whole))


def test_an_empty_file_and_an_abandoned_digest(tmp_path: Path) -> None:
    path = tmp_path / "empty.save"
    path.touch()
    assert TailDigest(str(path)).finish() == (hashlib.sha256(b"").hexdigest(), 0)
    tail = TailDigest(str(path))
    tail.abandon()
    assert not tail._thread.is_alive()


def test_a_remembered_digest_is_used_only_for_the_same_file_version(tmp_path: Path) -> None:
    path = tmp_path / "mem.save"
    path.write_bytes(b"state")
    assert remember(str(path), "f" * 64, 5)
    assert digest(str(path)) == ("f" * 64, 5)          # no second pass: the memo answers
    assert not remember(str(path), "0" * 64, 4)         # a size that does not match
    with path.open("ab") as handle:
        handle.write(b"!")                             # a new version of the file
    assert digest(str(path)) == (hashlib.sha256(b"state!").hexdigest(), 6)
