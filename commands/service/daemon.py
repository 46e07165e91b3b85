"""xlsnapd: listen on the UNIX socket, fork a handler per client, reload the policy on SIGHUP."""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import pkgutil
import select
import signal
import socket
import sys
import traceback
from types import FrameType

from commands.service.peer import peer_of
from commands.service.policy import DEFAULT_POLICY, Policy, PolicyError, load_policy
from commands.service.protocol import (SIGINT_BYTE, SIGTERM_BYTE, recv_request, send_exit,
                                       socket_path)
from commands.service.worker import die_with_parent, finish, log, run_request

_SD_LISTEN_FDS_START = 3


def preload() -> None:
    """Import what every command needs once, so a forked worker starts with it in memory."""
    import commands
    import projections

    for package in (commands, projections):
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if not info.name.endswith("__main__"):
                importlib.import_module(info.name)
    importlib.import_module("eventsourcing.sqlite")
    gc.collect()
    gc.freeze()


def _listener(path: str) -> socket.socket:
    """systemd's socket (socket activation) or a new one at ``path``, mode 0666."""
    if os.environ.get("LISTEN_PID") == str(os.getpid()) and os.environ.get("LISTEN_FDS") == "1":
        return socket.socket(fileno=_SD_LISTEN_FDS_START)
    folder = os.path.dirname(path)
    if folder and not os.path.isdir(folder):
        os.makedirs(folder, mode=0o755)
    if os.path.exists(path):
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    os.chmod(path, 0o666)
    sock.listen(128)
    return sock


def _exit_code(status: int) -> int:
    """The worker's exit code, or minus the signal that ended it (the client dies of it too)."""
    return os.waitstatus_to_exitcode(status)


def handle(conn: socket.socket, policy: Policy) -> int:
    """Serve one client: run its command in a worker, relay its signals, send its exit code."""
    peer = peer_of(conn)
    try:
        request, fds = recv_request(conn)
    except (OSError, ValueError) as exc:
        print(f"xlsnapd: bad request from pid {peer.pid}: {exc}", file=sys.stderr)
        return 0
    pid = os.fork()
    if pid == 0:
        die_with_parent()
        conn.close()
        try:
            code = run_request(request, fds, peer, policy)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException as exc:  # noqa: BLE001 - a bug: say it, like main() does
            log("".join(traceback.format_exception(exc)))
            print(f"xlsnap: error: internal error in xlsnapd: {type(exc).__name__}: {exc}",
                  file=sys.stderr)
            code = 70
        finish(code)
    for fd in fds:
        os.close(fd)
    signal.signal(signal.SIGTERM, lambda signum, frame: os.kill(pid, signal.SIGTERM))
    pidfd = os.pidfd_open(pid)
    while True:
        ready, _, _ = select.select([conn, pidfd], [], [])
        if pidfd in ready:
            break
        data = conn.recv(64)
        if not data:  # the client is gone: as if the process running the command died
            os.kill(pid, signal.SIGKILL)
            break
        for byte in data:
            if bytes([byte]) in (SIGINT_BYTE, SIGTERM_BYTE):
                os.kill(pid, signal.SIGINT if bytes([byte]) == SIGINT_BYTE else signal.SIGTERM)
    _, status = os.waitpid(pid, 0)
    try:
        send_exit(conn, _exit_code(status))
    except OSError:
        pass
    return 0


class Service:
    """The listening socket, the policy in force, and the handlers running."""

    def __init__(self, sock: socket.socket, policy_path: str, policy: Policy) -> None:
        self.sock, self.policy_path, self.policy = sock, policy_path, policy
        self.handlers: set[int] = set()
        self.stopping = False

    def reload(self, signum: int, frame: FrameType | None) -> None:
        try:
            self.policy = load_policy(self.policy_path)
            print(f"xlsnapd: policy {self.policy_path} reloaded", file=sys.stderr)
        except PolicyError as exc:
            print(f"xlsnapd: policy not reloaded, the old one stays: {exc}", file=sys.stderr)

    def reap(self, signum: int = 0, frame: FrameType | None = None) -> None:
        while self.handlers:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.handlers.discard(pid)

    def stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
        for pid in list(self.handlers):
            os.kill(pid, signal.SIGTERM)
        self.sock.close()

    def serve(self) -> None:
        signal.signal(signal.SIGHUP, self.reload)
        signal.signal(signal.SIGCHLD, self.reap)
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                if self.stopping:
                    break
                raise
            # SIGCHLD waits until the pid is in ``handlers`` (else a quick handler is
            # reaped before it is added, and stays there to be signalled after reuse).
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
            pid = os.fork()
            if pid == 0:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
                self.sock.close()
                for signum in (signal.SIGHUP, signal.SIGCHLD):
                    signal.signal(signum, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                die_with_parent()
                os.setsid()
                code = 70
                try:
                    code = handle(conn, self.policy)
                finally:
                    os._exit(code)
            self.handlers.add(pid)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
            conn.close()
        while self.handlers:  # let the commands in flight finish (their undo on SIGTERM)
            try:
                self.handlers.discard(os.wait()[0])
            except ChildProcessError:
                break


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="xlsnapd", description="The xlsnap service: runs "
                                     "xlsnap commands for local clients under a policy.")
    parser.add_argument("--socket", default=socket_path(),
                        help="UNIX socket to listen on [XLSNAP_SOCKET; default %(default)s]")
    parser.add_argument("--policy", default=os.environ.get("XLSNAP_POLICY") or DEFAULT_POLICY,
                        help="Policy file [XLSNAP_POLICY; default %(default)s]")
    parser.add_argument("--foreground", action="store_true",
                        help="Run in this terminal (xlsnapd never forks into the background; "
                             "the flag says so for scripts and units)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("xlsnapd: error: the service runs as root", file=sys.stderr)
        return PolicyError.exit_code   # a usage error (2)
    try:
        policy = load_policy(args.policy)
    except PolicyError as exc:
        print(f"xlsnapd: error: {exc}", file=sys.stderr)
        return exc.exit_code
    preload()
    sock = _listener(args.socket)
    print(f"xlsnapd: listening on {args.socket} (policy {args.policy}, "
          f"{len(policy.grants)} grants)", file=sys.stderr, flush=True)
    Service(sock, args.policy, policy).serve()
    return 0


def entry_point() -> None:
    sys.exit(main())
