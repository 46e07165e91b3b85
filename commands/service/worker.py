"""One request in xlsnapd: a forked process that becomes the client's command (its fds, cwd, env, actor)."""

from __future__ import annotations

import ctypes
import io
import os
import signal
import socket
import sys
import threading
import traceback
from typing import Any

from commands.errors import XlsnapError
from commands.service.access import Refused, admit
from commands.service.peer import Peer, peer_actor, peer_of
from commands.service.policy import Policy
from commands.service.protocol import SIGINT_BYTE, SIGTERM_BYTE, recv_request, send_exit
from ledger.actor import act_as

#: What a non-root caller's environment may set; the rest is the service's own.
_CALLER_ENV = ("COLUMNS", "LINES", "TERM", "NO_COLOR", "LANG", "XLSNAP_DEBUG")
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """SIGKILL this process when its parent dies (prctl(2)): a killed service is a crash."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


#: The service's own stderr (its log), kept when the client's take 0, 1, 2.
_log_fd = 2


def log(message: str) -> None:
    """A line in the service's log (not the client's stderr)."""
    os.write(_log_fd, f"xlsnapd: {message}\n".encode(errors="replace"))


def _adopt_fds(fds: list[int]) -> None:
    """Make the client's descriptors this process's 0, 1, 2, and sys.std* over them."""
    global _log_fd
    _log_fd = os.dup(2)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    for fd in set(fds) - {0, 1, 2}:
        os.close(fd)
    enc = sys.stdout.encoding
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding=enc)
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding=enc,
                                  line_buffering=os.isatty(1))
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding=enc,
                                  errors="backslashreplace", line_buffering=True)


def _environment(env: dict[str, str], peer: Peer) -> dict[str, str]:
    """Root's client environment as is (root may run in process anyway); else a few terminal
    and debug variables over the service's own."""
    if peer.is_root:
        return dict(env)
    return {**os.environ, **{k: v for k, v in env.items()
                          if k in _CALLER_ENV or k.startswith("LC_")}}


def _record_refusal(refused: Refused, peer: Peer) -> None:
    """Record the refusal: in the domain's ledger, else (no domain, or an unknown one) in the
    caller's access log, so that ``history`` shows every denied attempt."""
    from eventsourcing.application import AggregateNotFoundError

    from commands.bootstrap import open_services
    from commands.config.settings import Settings
    from ledger.access_log import EVERY_DOMAIN, AccessLog, access_log_id

    log(f"refused: {refused.message}")
    if not refused.command:
        return
    svc = open_services(Settings.resolve(None, None, None, None, None, False, False))
    try:
        try:
            if refused.domain is None or refused.right is None:
                raise LookupError("no domain ledger")
            ledger = svc.ledger_for(svc.resolve(refused.domain).domain)
            ledger.record_refused(refused.command, refused.right, refused.message, svc.actor)
            svc.app.save(ledger)
            return
        except (LookupError, XlsnapError):
            pass
        try:
            access = svc.app.load(access_log_id(peer.uid))
        except AggregateNotFoundError:
            access = AccessLog(uid=peer.uid, actor=svc.actor)
        access.record_refused(refused.command, refused.right, refused.message,
                              refused.domain or EVERY_DOMAIN, svc.actor)
        svc.app.save(access)
    except Exception as exc:  # the refusal stands; only its record failed
        log(f"refusal not recorded: {exc}")
    finally:
        svc.close()


def run_request(request: dict[str, Any], fds: list[int], peer: Peer, policy: Policy) -> int:
    """Become the client's command and run it; its exit code."""
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    _adopt_fds(fds)
    env = _environment(request.get("env") or {}, peer)
    os.environ.clear()
    os.environ.update(env)
    argv = [str(a) for a in request.get("argv") or []]
    sys.argv = ["xlsnap", *argv]
    act_as(peer_actor(peer, request.get("env") or {}, request.get("uid")))
    try:
        os.chdir(str(request.get("cwd") or "/"))
    except OSError as exc:
        print(f"xlsnap: error: cannot enter {request.get('cwd')}: {exc.strerror}",
              file=sys.stderr)
        return Refused.exit_code
    from commands.cli.main import main

    try:
        argv = admit(argv, peer, policy)
    except Refused as refused:
        _record_refusal(refused, peer)
        print(f"xlsnap: error: {refused.message}", file=sys.stderr)
        return refused.exit_code
    except XlsnapError as exc:
        print(f"xlsnap: error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    return main(argv)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass


def warm_up_argv(folder: str) -> list[str]:
    """A read-only command on an empty ledger in ``folder`` (xlsnapd's own, 0700), which
    creates nothing: what a spare runs before it waits (see ``warm_up``)."""
    home = os.path.join(folder, "home")
    return ["--home", home, "--ledger", os.path.join(home, "ledger.sqlite"), "--config-dir",
            folder, "--toolstack", "offline", "domains"]


def warm_up(argv: list[str]) -> None:
    """Run ``argv`` with its output discarded. A fresh fork pays a copy-on-write fault for
    each page a command writes (1,700 of them: 15-20 ms here); a spare pays them while it
    waits instead of while a client does."""
    from commands.cli.main import main

    saved = [os.dup(fd) for fd in (1, 2)]
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in (1, 2):
            os.dup2(null, fd)
        main(argv)
        _flush()
    except BaseException as exc:  # noqa: BLE001 - a spare that cannot warm still serves
        log(f"warm-up failed: {type(exc).__name__}: {exc}")
    finally:
        for fd, copy in zip((1, 2), saved):
            os.dup2(copy, fd)
            os.close(copy)
        os.close(null)


#: Client byte -> the signal the command gets, as if the client's terminal sent it.
_SIGNALS = {SIGINT_BYTE[0]: signal.SIGINT, SIGTERM_BYTE[0]: signal.SIGTERM}


def _relay(conn: socket.socket, main: int, done: threading.Event) -> None:
    """Pass the client's signals to the command's thread; a client gone kills the command
    (as if the process running it had died: ``recover`` finishes it)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, set(_SIGNALS.values()))
    while True:
        try:
            data = conn.recv(64)
        except OSError:
            data = b""
        if not data:
            if not done.is_set():
                os.kill(os.getpid(), signal.SIGKILL)
            return
        for byte in data:
            if byte in _SIGNALS:
                signal.pthread_kill(main, _SIGNALS[byte])


def serve_one(channel: socket.socket, policy: Policy, warm: list[str] | None = None) -> int:
    """A spare worker: warm up, wait for xlsnapd to hand over a client, run its command, send
    its exit code; the exit code (0 when retired unused)."""
    die_with_parent()
    os.setsid()
    for signum in (signal.SIGHUP, signal.SIGCHLD, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if warm:
        warm_up(warm)
    try:
        _, fds, _, _ = socket.recv_fds(channel, 1, 1)
    except OSError:
        return 0
    channel.close()
    if not fds:
        return 0
    conn = socket.socket(fileno=fds[0])
    conn.set_inheritable(False)
    peer = peer_of(conn)
    try:
        request, std = recv_request(conn)
    except (OSError, ValueError) as exc:
        log(f"bad request from pid {peer.pid}: {exc}")
        return 0
    done = threading.Event()
    threading.Thread(target=_relay, args=(conn, threading.get_ident(), done),
                     daemon=True).start()
    try:
        code = run_request(request, std, peer, policy)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException as exc:  # noqa: BLE001 - a bug: say it, like main() does
        log("".join(traceback.format_exception(exc)))
        print(f"xlsnap: error: internal error in xlsnapd: {type(exc).__name__}: {exc}",
              file=sys.stderr)
        code = 70
    _flush()
    done.set()
    try:
        send_exit(conn, code)
    except OSError:
        pass
    return code
