"""The ``xlsnap`` entry point: hand the command to xlsnapd when it listens, else run it in process.

Imports only built-in modules (``os``, ``sys``, ``_socket``, ``_signal``) until it falls
back, so a command through the service costs no typer, eventsourcing, project or even
``socket``/``json`` imports in the client. ``write_launcher`` makes an ``xlsnap`` script
that starts Python without ``site`` (``-IS``) for it.
"""

import os
import sys

import _signal
import _socket

from commands.service.protocol import (SIGINT_BYTE, SIGTERM_BYTE, encode_request, read_exit,
                                       send_request, socket_path)

TYPE_CHECKING = False  # typing's import would cost the client more than it does
if TYPE_CHECKING:
    from types import FrameType

#: Forces the in-process run (as ``--no-service`` does).
NO_SERVICE_ENV = "XLSNAP_NO_SERVICE"
NO_SERVICE_FLAG = "--no-service"


def _connect(path: str) -> _socket.socket | None:
    """A connection to the service, or None when none listens there."""
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
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
        if signum not in (_signal.SIGKILL, _signal.SIGSTOP):  # they have no handler to reset
            _signal.signal(signum, _signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    except (OSError, ValueError):  # not a signal this system knows
        pass
    return 128 + signum


def through_service(sock: _socket.socket, argv: list[str]) -> int:
    """Run ``argv`` in the service; signals go to it; its exit code comes back."""
    request = encode_request(argv, os.environ, os.getcwd(), os.getuid())

    def forward(signum: int, frame: "FrameType | None") -> None:
        try:
            sock.sendall(SIGINT_BYTE if signum == _signal.SIGINT else SIGTERM_BYTE)
        except OSError:
            pass

    _signal.signal(_signal.SIGINT, forward)
    _signal.signal(_signal.SIGTERM, forward)
    # A parent may have left them blocked (the mask is inherited), as main() says too.
    _signal.pthread_sigmask(_signal.SIG_UNBLOCK, {_signal.SIGINT, _signal.SIGTERM})
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
        try:
            return through_service(sock, args)
        finally:
            sock.close()
    if sys.flags.no_site:  # a launcher's -IS: the in-process run needs site-packages
        os.execv(sys.executable, [sys.executable, "-P", "-m", "commands", NO_SERVICE_FLAG,
                                  *args])
    from commands.cli.main import main as in_process

    return in_process(args)


def entry_point() -> None:
    """Console-script entry: ``sys.exit(main())``, SIGINT/SIGTERM held once the command is
    over (nothing is left to stop; Python's exit would print the handler's traceback, or,
    once it has reset the handlers, let the signal kill a process that succeeded)."""
    code = main()
    _signal.pthread_sigmask(_signal.SIG_BLOCK, {_signal.SIGINT, _signal.SIGTERM})
    sys.exit(code)


def write_launcher(path: str, python: str, root: str) -> None:
    """Write an ``xlsnap`` script at ``path``: ``python -IS`` running this client from ``root``
    (the folder holding ``commands/``), executable by everyone."""
    text = (f"#!{python} -IS\n"
            f"# xlsnap's client: Python without site, so that a command through xlsnapd starts\n"
            f"# in a few ms (commands/service/client.py falls back to the whole CLI itself).\n"
            f"import sys\nsys.path.insert(0, {root!r})\n"
            "from commands.service.client import entry_point\nentry_point()\n")
    with open(path, "w") as out:
        out.write(text)
    os.chmod(path, 0o755)


if __name__ == "__main__":  # python -m commands.service.client --launcher PATH
    if sys.argv[1:2] == ["--launcher"] and len(sys.argv) == 3:
        write_launcher(sys.argv[2], sys.executable,
                       os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    else:
        sys.exit("usage: python -m commands.service.client --launcher PATH")
