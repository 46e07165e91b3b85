"""xlsnapd: listen on the UNIX socket, hand each client to a spare worker, reload the policy
on SIGHUP."""

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
import tempfile
from types import FrameType

from commands.service.policy import DEFAULT_POLICY, Policy, PolicyError, load_policy
from commands.service.protocol import send_exit, socket_path
from commands.service.worker import serve_one, warm_up_argv

_SD_LISTEN_FDS_START = 3
#: Workers forked in advance, idle until a client comes (each is a copy-on-write fork).
SPARES = 2


def preload() -> None:
    """Import what every command needs once, so a forked worker starts with it in memory."""
    import commands
    import projections

    for package in (commands, projections):
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if not info.name.endswith("__main__"):
                importlib.import_module(info.name)
    importlib.import_module("eventsourcing.sqlite")
    # the QMP client (asyncio, ssl: ~60 ms) is imported by the first QMP call: not in a worker
    importlib.import_module("qemu.qmp")
    importlib.import_module("qemu.qmp.protocol")
    from commands.cli.main import prebuild

    prebuild()
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


#: The signals xlsnapd handles.
_HANDLED = {signal.SIGHUP, signal.SIGCHLD, signal.SIGTERM, signal.SIGINT}


def _noop(signum: int, frame: FrameType | None) -> None:
    """SIGCHLD's handler: there only to wake ``select`` through the wakeup fd."""


class Service:
    """The listening socket, the policy in force, the spare workers and those at work.

    xlsnapd accepts each client itself and hands the connection to a spare: a worker
    forked in advance (a fork of this process costs milliseconds, kept off the client's
    path), which serves that client alone and exits. Spares of an older policy retire.
    """

    def __init__(self, sock: socket.socket, policy_path: str, policy: Policy,
                 warm: list[str] | None = None, spares: int = SPARES) -> None:
        self.sock, self.policy_path, self.policy, self.warm = sock, policy_path, policy, warm
        self.want_spares = spares
        self.spares: list[tuple[int, socket.socket]] = []  # idle, oldest first
        self.working: dict[int, socket.socket] = {}  # pid -> the connection it serves
        self.stopping = False
        self.reloaded = False
        self.wake = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def reload(self, signum: int, frame: FrameType | None) -> None:
        try:
            self.policy = load_policy(self.policy_path)
            self.reloaded = True
            print(f"xlsnapd: policy {self.policy_path} reloaded", file=sys.stderr)
        except PolicyError as exc:
            print(f"xlsnapd: policy not reloaded, the old one stays: {exc}", file=sys.stderr)

    def stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def _fork_spare(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        pid = os.fork()
        if pid == 0:
            code = 70
            try:
                signal.set_wakeup_fd(-1)
                for fd in self.wake:
                    os.close(fd)
                for other in (self.sock, ours, *(c for _, c in self.spares),
                              *self.working.values()):
                    other.close()
                code = serve_one(theirs, self.policy, self.warm)
            finally:
                os._exit(code)
        theirs.close()
        self.spares.append((pid, ours))

    def _retire_spares(self) -> None:
        """End the idle spares (an empty hand-over); they are reaped as they exit."""
        for _, channel in self.spares:
            channel.close()
        self.spares.clear()

    def _dispatch(self, conn: socket.socket) -> None:
        """Hand ``conn`` to the oldest spare; keep a copy to report the worker's death."""
        if not self.spares:
            self._fork_spare()
        pid, channel = self.spares.pop(0)
        try:
            socket.send_fds(channel, [b"C"], [conn.fileno()])
        except OSError:  # the spare is gone: its reaping closes the connection
            pass
        channel.close()
        self.working[pid] = conn

    def _ended(self, pid: int, status: int) -> None:
        """A child ended: a client whose worker was killed hears of it (it could not say)."""
        for spare in [s for s in self.spares if s[0] == pid]:
            spare[1].close()
            self.spares.remove(spare)
        conn = self.working.pop(pid, None)
        if conn is None:
            return
        code = _exit_code(status)
        try:
            if code < 0:
                send_exit(conn, code)
        except OSError:
            pass
        conn.close()

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self._ended(pid, status)

    def _drain_wakeups(self) -> None:
        while True:
            try:
                if not os.read(self.wake[0], 512):
                    return
            except BlockingIOError:
                return

    def serve(self) -> None:
        """Serve until SIGTERM/SIGINT (``main`` blocked them, and SIGHUP, until now)."""
        signal.set_wakeup_fd(self.wake[1])
        signal.signal(signal.SIGHUP, self.reload)
        signal.signal(signal.SIGCHLD, _noop)
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _HANDLED)
        self.sock.setblocking(False)
        while not self.stopping:
            if self.reloaded:
                self.reloaded = False
                self._retire_spares()
            # Refilled when no command runs (a fork and its warm-up would take CPU from
            # it), or at once when none is left.
            while len(self.spares) < self.want_spares and not (self.working and self.spares):
                self._fork_spare()
            ready, _, _ = select.select([self.sock, self.wake[0]], [], [])
            if self.wake[0] in ready:
                self._drain_wakeups()
            self._reap()
            if self.sock in ready and not self.stopping:
                try:
                    conn, _ = self.sock.accept()
                except (BlockingIOError, InterruptedError):
                    continue
                conn.setblocking(True)
                self._dispatch(conn)
        self._shut_down()

    def _shut_down(self) -> None:
        """Stop listening; the commands in flight get SIGTERM (they undo, as on Ctrl-C)."""
        self.sock.close()
        self._retire_spares()
        for pid in self.working:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        while True:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                return
            self._ended(pid, status)


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
    # A client that connects may signal at once (a reload): not the default action (death).
    signal.pthread_sigmask(signal.SIG_BLOCK, _HANDLED)
    sock = _listener(args.socket)
    print(f"xlsnapd: listening on {args.socket} (policy {args.policy}, "
          f"{len(policy.grants)} grants)", file=sys.stderr, flush=True)
    # 0700 and empty: the spares' warm-up ledger that is never created; beside the socket
    # (/run/xlsnap), where an empty folder left by a killed service does no harm
    with tempfile.TemporaryDirectory(prefix="warm-up-",
                                     dir=os.path.dirname(os.path.abspath(args.socket))) as folder:
        Service(sock, args.policy, policy, warm_up_argv(folder)).serve()
    return 0


def entry_point() -> None:
    sys.exit(main())
