"""The owner of an operation: a running process is told from a gone one, also after pid reuse."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from ledger.owner import ALIVE, GONE, REMOTE, UNKNOWN, boot_id, current_owner, owner_state, \
    process_start


def test_this_process_is_alive_and_a_reused_pid_is_not_its_owner() -> None:
    me = current_owner()
    assert me["pid"] == os.getpid() and me["host"] == socket.gethostname()
    assert me["start"] == process_start(os.getpid()) and me["boot_id"] == boot_id() != ""
    assert owner_state(me) == ALIVE
    # the same pid, started at another time: a process that reused the owner's pid
    assert owner_state({**me, "start": me["start"] + 1}) == GONE
    assert owner_state({**me, "boot_id": "another-boot"}) == GONE
    assert owner_state({**me, "host": "elsewhere.invalid"}) == REMOTE
    assert owner_state(None) == UNKNOWN  # an operation recorded before owners were


def test_an_exited_process_is_gone() -> None:
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True, timeout=30)
    pid = int(child.stdout)
    assert owner_state({"host": socket.gethostname(), "pid": pid, "start": 1,
                        "boot_id": boot_id()}) == GONE


def test_a_command_name_with_spaces_and_parentheses_is_parsed() -> None:
    code = ("import sys; open('/proc/self/comm', 'w').write('a) 1 2 (c'); print('named', "
            "flush=True); sys.stdin.read()")
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "named"
        assert open(f"/proc/{proc.pid}/comm").read().strip() == "a) 1 2 (c"
        start = process_start(proc.pid)
        assert start is not None and start >= process_start(os.getpid())
    finally:
        proc.communicate("", timeout=30)
