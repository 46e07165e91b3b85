"""QMP driver failure modes that need no QEMU: no socket, a mute server, bad paths."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from commands.drivers.qmp import (
    Overlay,
    Qmp,
    QmpTimeout,
    QmpUnavailable,
    UnsafePath,
    check_absolute,
)

GREETING = {"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""},
                    "capabilities": []}}


@pytest.fixture
def mute_server(tmp_path: Path) -> Iterator[Path]:
    """A QMP server that greets, accepts capabilities, then never answers a command."""
    path = tmp_path / "mute.qmp"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    stop = threading.Event()

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.sendall(json.dumps(GREETING).encode() + b"\r\n")
            hello = _read_message(conn)      # QMP clients send JSON without a newline
            reply = {"return": {}, **({"id": hello["id"]} if "id" in hello else {})}
            conn.sendall(json.dumps(reply).encode() + b"\r\n")
            stop.wait(10)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield path
    stop.set()
    server.close()
    thread.join(timeout=5)


def _read_message(conn: socket.socket) -> dict:
    buffer = ""
    while True:
        chunk = conn.recv(4096)
        if not chunk:
            raise EOFError("client hung up")
        buffer += chunk.decode()
        try:
            return json.JSONDecoder().raw_decode(buffer.strip())[0]
        except json.JSONDecodeError:
            continue


def test_missing_socket_is_unavailable(tmp_path: Path) -> None:
    qmp = Qmp(str(tmp_path / "none.qmp"), connect_timeout=1)
    with pytest.raises(QmpUnavailable, match="cannot connect to QMP socket"):
        qmp.query_status()
    assert qmp.log == []


def test_a_command_without_reply_times_out(mute_server: Path) -> None:
    qmp = Qmp(str(mute_server), connect_timeout=2, command_timeout=0.3)
    start = time.monotonic()
    with pytest.raises(QmpTimeout, match="query-status: no reply within 0.3s"):
        qmp.query_status()
    assert time.monotonic() - start < 5
    assert qmp.log[0]["execute"] == "query-status" and qmp.log[0]["ok"] is False


@pytest.mark.parametrize("path", ["/var/lib/xlsnap/web/mem-1.save", "/a b;$(id)'x"])
def test_absolute_paths_pass(path: str) -> None:
    assert check_absolute(path) == path


@pytest.mark.parametrize("path", ["mem.save", "a/b", "./x", ""])
def test_relative_paths_are_refused(path: str) -> None:
    with pytest.raises(UnsafePath, match="must be absolute"):
        check_absolute(path)


def test_overlay_refuses_an_existing_file_before_connecting(tmp_path: Path) -> None:
    """QEMU would silently overwrite it (checked on QEMU 7.2)."""
    existing = tmp_path / "top.qcow2"
    existing.write_bytes(b"precious")
    qmp = Qmp(str(tmp_path / "none.qmp"))
    with pytest.raises(FileExistsError):
        qmp.snapshot_external([Overlay("disk0", str(existing), "top")])
    with pytest.raises(UnsafePath):
        qmp.snapshot_external([Overlay("disk0", "relative.qcow2", "top")])
    assert existing.read_bytes() == b"precious"


def test_migrate_leaves_no_empty_file_when_qemu_is_unreachable(tmp_path: Path) -> None:
    qmp = Qmp(str(tmp_path / "none.qmp"), connect_timeout=1)
    with pytest.raises(QmpUnavailable):
        qmp.migrate_to_file(str(tmp_path / "mem.save"))
    assert not (tmp_path / "mem.save").exists()
