"""A real xlsnapd for tests: started on a socket of its own, driven with the real client."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
#: A non-root caller: nobody, no groups (a real uid, not a mocked credential).
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
#: The client as a non-root user runs: the system Python (the venv's lies under /root),
#: which suffices because the client imports only the standard library.
SYSTEM_PYTHON = "/usr/bin/python3"
#: What the client imports (tests/unit/test_service_client.py checks that it is all).
CLIENT_MODULES = ("commands/__init__.py", "commands/__main__.py", "commands/service/__init__.py",
                  "commands/service/client.py", "commands/service/protocol.py")


@dataclass
class Xlsnapd:
    """A running service: its socket, policy file, process and log."""

    folder: Path
    proc: subprocess.Popen[bytes]

    @property
    def socket(self) -> Path:
        return self.folder / "xlsnap.sock"

    @property
    def policy(self) -> Path:
        return self.folder / "policy.toml"

    @property
    def log(self) -> Path:
        return self.folder / "xlsnapd.log"

    def client_argv(self, *args: str, as_user: list[str] | None = None) -> list[str]:
        """The real client's argv (as root, or through ``as_user`` such as NOBODY)."""
        if as_user is None:
            return [sys.executable, "-m", "commands", *args]
        return [*as_user, SYSTEM_PYTHON, "-m", "commands", *args]

    def client_cwd(self, as_user: list[str] | None = None) -> Path:
        """Where the client runs: the repository, or for another user a copy of the client
        (stdlib-only modules) in the service's world-readable folder."""
        return REPO if as_user is None else self.folder / "client"

    def client_env(self, env: dict[str, str], as_user: list[str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in env.items() if k != "XLSNAP_NO_SERVICE"}
        if as_user is not None:
            env = {k: v for k, v in env.items() if not k.startswith("XLSNAP_")}
        return {**env, "XLSNAP_SOCKET": str(self.socket)}

    def run(self, *args: str, env: dict[str, str], as_user: list[str] | None = None
            ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.client_argv(*args, as_user=as_user), capture_output=True,
                              text=True, env=self.client_env(env, as_user),
                              cwd=self.client_cwd(as_user),
                              timeout=120)

    def reload(self) -> None:
        self.proc.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def start_xlsnapd(env: dict[str, str], policy: str = "") -> Xlsnapd:
    """Start xlsnapd (root, as the tests run) with ``env`` and this policy; wait until it listens.

    Its folder is world-searchable, so that a non-root client reaches the socket.
    """
    folder = Path(tempfile.mkdtemp(prefix="xlsnapd-", dir="/tmp"))
    folder.chmod(0o755)
    (folder / "policy.toml").write_text(policy)
    for module in CLIENT_MODULES:
        (folder / "client" / module).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / module, folder / "client" / module)
    log = (folder / "xlsnapd.log").open("wb")
    env = {k: v for k, v in env.items() if k not in ("XLSNAP_SOCKET", "XLSNAP_NO_SERVICE")}
    proc = subprocess.Popen([sys.executable, "-m", "commands.service", "--foreground",
                             "--socket", str(folder / "xlsnap.sock"),
                             "--policy", str(folder / "policy.toml")],
                            cwd=REPO, env=env, stdout=log, stderr=log)
    service = Xlsnapd(folder, proc)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"xlsnapd ended: {service.log.read_text()}")
        try:
            with socket.socket(socket.AF_UNIX) as probe:
                probe.connect(str(service.socket))
            return service
        except OSError:
            time.sleep(0.05)
    service.stop()
    raise RuntimeError("xlsnapd did not listen within 30 s")


def via_service_requested(option: bool) -> bool:
    """Run the CLI tests through a session-wide xlsnapd (``--via-service`` or the env)."""
    return option or os.environ.get("XLSNAP_TEST_VIA_SERVICE") == "1"
