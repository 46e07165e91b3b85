"""The client/service wire format: one request (NUL-separated words and three descriptors),
signal bytes, an exit frame.

Built-in modules only (``os``, ``sys``, ``_socket``: no import costs a client start-up
anything), since the client imports this before anything else.
"""

import os
import sys

import _socket

TYPE_CHECKING = False  # typing's import would cost the client more than all of this module
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

#: Where the service listens unless ``--socket`` / ``XLSNAP_SOCKET`` say otherwise.
DEFAULT_SOCKET = "/run/xlsnap/xlsnap.sock"

#: Client -> service after the request: the client got SIGINT / SIGTERM.
SIGINT_BYTE, SIGTERM_BYTE = b"I", b"T"
#: Service -> client: ``EXIT`` then the exit code (4 bytes, big-endian, signed; minus the
#: signal that ended the command).
EXIT = b"E"
#: The request's first word: this format, so that another one is refused, not misread.
MAGIC = b"xlsnap-request-2"
#: A request's body may not be longer (argv and environment).
MAX_REQUEST = 1 << 20
_INT = 4


def socket_path(env: "Mapping[str, str] | None" = None) -> str:
    """The service socket: ``XLSNAP_SOCKET`` or the default."""
    return (env if env is not None else os.environ).get("XLSNAP_SOCKET") or DEFAULT_SOCKET


def encode_request(argv: list[str], env: "Mapping[str, str]", cwd: str, uid: int) -> bytes:
    """Length, then NUL-separated words: magic, cwd, uid, argc, argv, ``KEY=VALUE`` pairs
    (no word of these can hold a NUL)."""
    words = [MAGIC, os.fsencode(cwd), b"%d" % uid, b"%d" % len(argv),
             *map(os.fsencode, argv),
             *(os.fsencode(k) + b"=" + os.fsencode(v) for k, v in env.items())]
    body = b"\0".join(words)
    return len(body).to_bytes(_INT, "big") + body


def decode_request(body: bytes) -> "dict[str, Any]":
    """The request ``encode_request`` made (argv, env, cwd, uid); ValueError if malformed."""
    words = body.split(b"\0")
    if len(words) < 4 or words[0] != MAGIC or not words[2].isdigit() or not words[3].isdigit():
        raise ValueError("not an xlsnap request")
    _magic, cwd, uid, argc, *rest = words
    n = int(argc)
    if n > len(rest):
        raise ValueError("argv cut short")
    env = {}
    for pair in rest[n:]:
        key, sep, value = pair.partition(b"=")
        if not sep:
            raise ValueError("environment entry without '='")
        env[os.fsdecode(key)] = os.fsdecode(value)
    return {"argv": [os.fsdecode(a) for a in rest[:n]], "env": env,
            "cwd": os.fsdecode(cwd), "uid": int(uid)}


def send_request(sock: "Any", data: bytes, fds: list[int]) -> None:
    """Send an encoded request with the client's stdin/stdout/stderr (SCM_RIGHTS)."""
    rights = b"".join(fd.to_bytes(_INT, sys.byteorder, signed=True) for fd in fds)
    sent = sock.sendmsg([data], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, rights)])
    if sent < len(data):
        sock.sendall(data[sent:])


def _received_fds(ancdata: list[tuple[int, int, bytes]]) -> list[int]:
    fds = []
    for level, kind, data in ancdata:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            usable = len(data) - len(data) % _INT
            fds += [int.from_bytes(data[i:i + _INT], sys.byteorder, signed=True)
                    for i in range(0, usable, _INT)]
    return fds


def recv_request(sock: "Any") -> "tuple[dict[str, Any], list[int]]":
    """Receive one request and its descriptors; ValueError if it is malformed."""
    data, ancdata, _flags, _addr = sock.recvmsg(65536, _socket.CMSG_SPACE(3 * _INT))
    fds = _received_fds(ancdata)
    try:
        if len(data) < _INT:
            raise ValueError("short request")
        size = int.from_bytes(data[:_INT], "big")
        if size > MAX_REQUEST:
            raise ValueError("request too long")
        body = bytearray(data[_INT:])
        while len(body) < size:
            chunk = sock.recv(size - len(body))
            if not chunk:
                raise ValueError("request cut short")
            body += chunk
        if len(fds) != 3:
            raise ValueError("request without its three descriptors")
        return decode_request(bytes(body[:size])), fds
    except ValueError:
        for fd in fds:
            os.close(fd)
        raise


def send_exit(sock: "Any", code: int) -> None:
    sock.sendall(EXIT + code.to_bytes(_INT, "big", signed=True))


def read_exit(data: bytes) -> int | None:
    """The exit code of a complete exit frame, else None."""
    if len(data) >= 1 + _INT and data[:1] == EXIT:
        return int.from_bytes(data[1:1 + _INT], "big", signed=True)
    return None
