"""The ``xlsnap`` entry point: hand the command to xlsnapd when it listens, else run it in process.

Imports only the standard library's socket layer until it falls back, so a command
through the service costs no typer, eventsourcing or project imports in the client.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from types import FrameType

from commands.service.protocol import (SIGINT_BYTE, SIGTERM_BYTE, read_exit, send_request,
                                       socket_path)

#: Forces the in-process run (as ``--no-service`` does).
NO_SERVICE_ENV = "XLSNAP_NO_SERVICE"
NO_SERVICE_FLAG = "--no-service"


def _connect(path: str) -> socket.socket | None:
    """A connection to the service, or None when none listens there."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        return None
    return sock


def _std_fds() -> list[int]:
    """Descriptors 0, 1, 2 (``/dev/null`` for one that is closed)."""
    fds = []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
            fds.append(fd)
        except OSError:
            fds.append(os.open(os.devnull, os.O_RDWR))
    return fds


def _die_of(signum: int) -> int:
    """End as the worker did: killed by ``signum`` (else exit 128 + signum, as a shell says)."""
    sys.stdout.flush()
    try:
        if signum not in (signal.SIGKILL, signal.SIGSTOP):  # they have no handler to reset
            signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    except (OSError, ValueError):  # not a signal this system knows
        pass
    return 128 + signum


def through_service(sock: socket.socket, argv: list[str]) -> int:
    """Run ``argv`` in the service; signals go to it; its exit code comes back."""
    request = {"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ), "uid": os.getuid()}

    def forward(signum: int, frame: FrameType | None) -> None:
        try:
            sock.sendall(SIGINT_BYTE if signum == signal.SIGINT else SIGTERM_BYTE)
        except OSError:
            pass

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    # A parent may have left them blocked (the mask is inherited), as main() says too.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    send_request(sock, request, _std_fds())
    reply = b""
    while True:
        chunk = sock.recv(16)
        if not chunk:
            break
        reply += chunk
        code = read_exit(reply)
        if code is not None:
            return code if code >= 0 else _die_of(-code)
    print("xlsnap: error: xlsnapd ended before the command did; if it changed a domain, "
          "run 'xlsnap recover DOMAIN'", file=sys.stderr)
    return 3


def main(argv: list[str] | None = None) -> int:
    """Through the service if one listens, else in process (also when ``--no-service`` is the
    first word or ``XLSNAP_NO_SERVICE`` is set)."""
    args = list(sys.argv[1:] if argv is None else argv)
    forced = args[:1] == [NO_SERVICE_FLAG]
    if forced:
        del args[0]
    sock = None if forced or os.environ.get(NO_SERVICE_ENV) else _connect(socket_path())
    if sock is not None:
        with sock:
            return through_service(sock, args)
    from commands.cli.main import main as in_process

    return in_process(args)


def entry_point() -> None:
    """Console-script entry: ``sys.exit(main())``."""
    sys.exit(main())
