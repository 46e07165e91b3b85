"""A running QEMU domain ``web`` for xlsnap's qemu toolstack, and how to look inside it.

QEMU runs under TCG with 64 MiB of RAM backed by a shared file, so a test changes the
guest's memory by writing that file and reads it with ``pmemsave``; its two qcow2 disks
are changed and read with ``qemu-io`` through the monitor. A revert may start QEMU
again (``-daemonize``, outside the fixture's own process): every QEMU answering on the
test's socket, or whose command line names the test's folder, is killed at teardown.
"""

from __future__ import annotations

import mmap
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from commands.engine.actions_restart import socket_pid
from commands.drivers.qmp import Qmp
from commands.bootstrap import open_services
from commands.config.settings import Settings
from tests.conftest import REPO, Run, ledger_backend, read_pattern
from tests.qemu_vm import QEMU, QemuVm, start_vm

RAM_MIB = 64
MARK_AT = 0x2000000          # 32 MiB: guest RAM the firmware leaves alone


@dataclass
class LiveDomain:
    """Domain ``web``: a QEMU, its QMP folder, its RAM file, xlsnap's folders."""

    root: Path
    vm: QemuVm
    qmp_dir: Path
    ram: Path
    home: Path
    config_dir: Path

    @property
    def socket(self) -> Path:
        return self.qmp_dir / "web.qmp"

    @property
    def disks(self) -> list[Path]:
        return self.vm.disks

    def qmp(self) -> Qmp:
        return Qmp(str(self.socket))

    def env(self, **extra: str) -> dict[str, str]:
        env = {**os.environ, "XLSNAP_HOME": str(self.home),
               "XLSNAP_CONFIG_DIR": str(self.config_dir), "XLSNAP_QMP_DIR": str(self.qmp_dir),
               "XLSNAP_TOOLSTACK": "qemu", **extra}
        env.pop("XLSNAP_FAULT_INJECT", None) if "XLSNAP_FAULT_INJECT" not in extra else None
        return env

    def xlsnap(self, *args: str, **extra: str) -> Run:
        proc = subprocess.run([sys.executable, "-m", "commands", *args], capture_output=True,
                              text=True, env=self.env(**extra), cwd=REPO, timeout=180)
        return Run(proc.returncode, proc.stdout, proc.stderr)

    def poke(self, data: bytes, at: int = MARK_AT) -> None:
        """Change the guest's RAM (its backing file is shared with QEMU)."""
        with self.ram.open("r+b") as handle, mmap.mmap(handle.fileno(), 0) as ram:
            ram[at:at + len(data)] = data
            ram.flush()

    def peek(self, length: int = 16, at: int = MARK_AT) -> bytes:
        """The guest's RAM as QEMU sees it (``pmemsave``)."""
        dump = self.root / "peek.bin"
        dump.unlink(missing_ok=True)
        self.qmp().execute("pmemsave", {"val": at, "size": length, "filename": str(dump)})
        return dump.read_bytes()

    def write(self, drive: str, byte: int) -> None:
        """Write 64 KiB of ``byte`` at offset 0 of a live drive (qemu-io via HMP)."""
        self.qmp().human_monitor_command(f'qemu-io {drive} "write -P {byte:#x} 0 64k"')

    def status(self) -> str:
        return self.qmp().query_status().status

    def live_files(self) -> dict[str, str]:
        return {d.device: d.filename for d in self.qmp().query_block()}

    def tags(self) -> dict[str, tuple[str, ...]]:
        return {d.device: d.snapshots for d in self.qmp().query_block()}

    def pid(self) -> int | None:
        return socket_pid(str(self.socket))

    def stop_qemu(self) -> None:
        """Quit whatever QEMU serves the socket and wait for it (frees the disks)."""
        pid = self.pid()
        if pid is None:
            return
        try:
            self.qmp().execute("quit")
        except Exception:  # noqa: BLE001 - it may hang up first
            pass
        _wait_gone(pid)

    def disk_has(self, path: Path, byte: int) -> bool:
        """Offline check (QEMU stopped first) through the whole backing chain."""
        return read_pattern(path, byte)

    def events(self) -> list:
        svc = open_services(Settings.resolve(str(self.home), None, str(self.config_dir)))
        try:
            key = next(iter(svc.app.iter_log()))[1].domain_key
            return list(svc.app.domain_events(key))
        finally:
            svc.close()

    def steps(self) -> list[list[str]]:
        """``[phase, action]`` of each step of the last operation."""
        events = self.events()
        first = max(i for i, e in enumerate(events) if type(e).__name__ == "OperationStarted")
        return [[e.phase, e.action] for e in events[first:] if type(e).__name__ == "StepStarted"]

    def record(self, name: str) -> dict:
        return dict([e for e in self.events() if type(e).__name__ == "SnapshotTaken"
                     and e.name == name][-1].record)


def _wait_gone(pid: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat", "rb") as handle:
                if handle.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X"):
                    return
        except OSError:
            return
        time.sleep(0.02)


def kill_qemus_of(folder: Path, socket: Path) -> None:
    """SIGKILL every QEMU serving ``socket`` or naming ``folder`` on its command line."""
    pids = set()
    served = socket_pid(str(socket)) if socket.exists() else None
    if served:
        pids.add(served)
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if cmdline.startswith(QEMU.encode()) and str(folder).encode() in cmdline:
            pids.add(int(proc.name))
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _wait_gone(pid)


@pytest.fixture
def live(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveDomain]:
    """Domain ``web`` running in QEMU: 64 MiB of shared RAM, two empty 16 MiB qcow2 disks
    (its ledger a fresh PostgreSQL database when the suite runs on PostgreSQL)."""
    if shutil.which(QEMU) is None or shutil.which("qemu-img") is None:
        pytest.skip(f"{QEMU} or qemu-img is not installed")
    if ledger_backend(request.config) == "postgresql":
        request.getfixturevalue("monkeypatch").setenv(
            "XLSNAP_LEDGER", str(request.getfixturevalue("pg_url")))
    qmp_dir = tmp_path / "qmp"
    ram = tmp_path / "web.ram"
    with ram.open("wb") as handle:
        handle.truncate(RAM_MIB << 20)
    extra = ["-object", f"memory-backend-file,id=ram,size={RAM_MIB}M,mem-path={ram},share=on",
             "-machine", "memory-backend=ram"]
    try:
        with start_vm(qmp_dir, disks=2, name="web", extra=extra) as vm:
            domain = LiveDomain(tmp_path, vm, qmp_dir, ram, tmp_path / "state", tmp_path / "xen")
            domain.config_dir.mkdir()
            yield domain
    finally:
        kill_qemus_of(tmp_path, qmp_dir / "web.qmp")
