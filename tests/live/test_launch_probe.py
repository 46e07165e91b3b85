"""``recover``'s view of a QEMU launch whose launcher was killed while QEMU was starting.

A QEMU started with ``-daemonize`` goes on starting after xlsnap dies; if recovery
looked only at the QMP socket it would see nothing, decide the launch never happened,
and that QEMU would take the socket (and the disks) afterwards.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from commands.engine.actions import Tools
from commands.engine.actions_restart import QemuLaunch, socket_pid
from commands.drivers.qemu_img import QemuImg
from tests.live.conftest import kill_qemus_of
from tests.qemu_vm import make_disks, requires_qemu, vm_argv

pytestmark = [pytest.mark.slow, requires_qemu]


def _running(argv: list[str]) -> list[str]:
    wanted = "\0".join(argv) + "\0"
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "cmdline").read_text() == wanted and \
                    (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] not in "ZX":
                found.append(proc.name)
        except OSError:
            continue
    return found


def test_a_qemu_still_starting_is_waited_for_and_its_undo_stops_it(tmp_path: Path) -> None:
    disks = make_disks(tmp_path / "disks", 1)
    socket = tmp_path / "vm.qmp"
    argv = [*vm_argv(socket, disks, incoming=True), "-daemonize"]
    params = {"socket": str(socket), "argv": argv}
    tools = Tools(qemu_img=QemuImg())
    try:
        subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)   # the launcher is gone: nobody waits
        deadline = time.monotonic() + 10
        while not _running(argv) and time.monotonic() < deadline:
            time.sleep(0.001)                         # it has exec'd, not yet served
        assert socket_pid(str(socket)) is None
        seen = QemuLaunch().probe(params, tools)
        assert seen.happened is True and seen.detail["pid"] == socket_pid(str(socket))
        QemuLaunch().undo(params, tools)
        assert socket_pid(str(socket)) is None and _running(argv) == []
        assert QemuLaunch().probe(params, tools).happened is False
    finally:
        kill_qemus_of(tmp_path, socket)
