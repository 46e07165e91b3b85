"""A memory image another host saved: the ledger knows the host, and revert names it."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from commands.errors import RecordMismatch
from commands.handlers.revert_live import check_memory_image
from tests.ledger_builder import ACTOR, LedgerBuilder


def test_the_ledger_keeps_the_host_that_took_each_snapshot(tmp_path: Path) -> None:
    builder = LedgerBuilder(tmp_path / "ledger.sqlite", {**ACTOR, "host": "xen7"})
    builder.create("web", "s1")
    builder.close()
    again = LedgerBuilder(tmp_path / "ledger.sqlite")  # replayed from the stored events
    ledger = again.app.get_domain("name:web")
    again.close()
    assert ledger is not None and ledger.entry("s1")["taken_on"] == "xen7"


def test_an_image_saved_on_another_host_is_refused_naming_that_host(tmp_path: Path) -> None:
    record = {"memory_file": str(tmp_path / "gone" / "s1.save"), "memory_sha256": "00"}
    with pytest.raises(RecordMismatch) as refused:
        check_memory_image("s1", record, False, "xen7")
    message = str(refused.value)
    assert "saved on host xen7" in message and f"({socket.gethostname()})" in message
    assert "shared" not in message or "storage every host mounts" in message
    with pytest.raises(RecordMismatch, match="is missing$"):
        check_memory_image("s1", record, False, socket.gethostname())
