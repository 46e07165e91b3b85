"""The client/service wire format: one request (JSON and three descriptors), signal bytes, an exit frame.

Stdlib only: the client imports this before anything else.
"""

from __future__ import annotations

import json
import os
import socket
import struct
from typing import Any

#: Where the service listens unless ``--socket`` / ``XLSNAP_SOCKET`` say otherwise.
DEFAULT_SOCKET = "/run/xlsnap/xlsnap.sock"

#: Client -> service after the request: the client got SIGINT / SIGTERM.
SIGINT_BYTE, SIGTERM_BYTE = b"I", b"T"
#: Service -> client: ``EXIT`` then the exit code (4 bytes, big-endian, signed; minus the
#: signal that ended the command).
EXIT = b"E"
_LEN = struct.Struct(">I")
_CODE = struct.Struct(">i")
#: A request's JSON may not be longer (argv and environment).
MAX_REQUEST = 1 << 20


def socket_path(env: dict[str, str] | os._Environ[str] | None = None) -> str:
    """The service socket: ``XLSNAP_SOCKET`` or the default."""
    return (env if env is not None else os.environ).get("XLSNAP_SOCKET") or DEFAULT_SOCKET


def send_request(sock: socket.socket, request: dict[str, Any], fds: list[int]) -> None:
    """Send the request (length-prefixed JSON) with the client's stdin/stdout/stderr."""
    body = json.dumps(request).encode()
    data = _LEN.pack(len(body)) + body
    sent = socket.send_fds(sock, [data], fds)
    if sent < len(data):
        sock.sendall(data[sent:])


def recv_request(sock: socket.socket) -> tuple[dict[str, Any], list[int]]:
    """Receive one request and its descriptors; ValueError if it is malformed."""
    data, fds, _flags, _addr = socket.recv_fds(sock, 65536, 3)
    if len(data) < _LEN.size:
        for fd in fds:
            os.close(fd)
        raise ValueError("short request")
    (size,) = _LEN.unpack_from(data)
    if size > MAX_REQUEST:
        raise ValueError("request too long")
    body = bytearray(data[_LEN.size:])
    while len(body) < size:
        chunk = sock.recv(size - len(body))
        if not chunk:
            raise ValueError("request cut short")
        body += chunk
    request = json.loads(bytes(body))
    if not isinstance(request, dict) or len(fds) != 3:
        for fd in fds:
            os.close(fd)
        raise ValueError("request without its three descriptors")
    return request, fds


def send_exit(sock: socket.socket, code: int) -> None:
    sock.sendall(EXIT + _CODE.pack(code))


def read_exit(data: bytes) -> int | None:
    """The exit code of a complete exit frame, else None."""
    if len(data) >= 1 + _CODE.size and data[:1] == EXIT:
        return _CODE.unpack_from(data, 1)[0]
    return None
