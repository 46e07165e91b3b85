"""One request in xlsnapd: a forked process that becomes the client's command (its fds, cwd, env, actor)."""

from __future__ import annotations

import ctypes
import io
import os
import signal
import sys
from typing import Any

from commands.service.access import Refused, admit
from commands.service.peer import Peer, peer_actor
from commands.service.policy import Policy
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


def _record_refusal(refused: Refused) -> None:
    """Record the refusal in the domain's ledger (service log only if the domain is unknown)."""
    from commands.bootstrap import open_services
    from commands.config.settings import Settings

    log(f"refused: {refused.message}")
    if refused.domain is None or refused.right is None:
        return
    svc = open_services(Settings.resolve(None, None, None, None, None, False, False))
    try:
        ledger = svc.ledger_for(svc.resolve(refused.domain).domain)
        ledger.record_refused(refused.command, refused.right, refused.message, svc.actor)
        svc.app.save(ledger)
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
    from commands.errors import XlsnapError

    try:
        argv = admit(argv, peer, policy)
    except Refused as refused:
        _record_refusal(refused)
        print(f"xlsnap: error: {refused.message}", file=sys.stderr)
        return refused.exit_code
    except XlsnapError as exc:
        print(f"xlsnap: error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    return main(argv)


def finish(code: int) -> None:
    """Flush the client's streams and end this process with ``code`` (no parent clean-up)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
