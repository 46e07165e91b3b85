"""A running operation whose ledger another process writes to, or locks for too long.

In-process ``Operation`` on real qcow2 images; the other writer is a second ledger
connection (a recover that took the operation over) or a real second process holding a
write transaction longer than the ledger's busy timeout.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

from commands.engine.actions import StepSpec
from commands.config.domains import load_domain
from commands.drivers.qemu_img import QemuImg
from commands.errors import LedgerWriteFailed
from commands.engine.operation import Operation
from commands.engine.operation_errors import LedgerChanged
from ledger.app import LedgerApp
from tests.conftest import REPO, Scratch, read_pattern, tags, tags_unlocked, write_pattern

FAKE = str(REPO / "tests" / "fakes" / "failing_qemu_img.py")


def _tagged(path) -> bool:
    try:
        return "s1" in tags_unlocked(path)
    except subprocess.CalledProcessError:
        return False  # qemu-img is writing it (locked)


def _plan(scratch: Scratch) -> list[StepSpec]:
    return [StepSpec("internal-snapshot-create", str(d), {"path": str(d), "tag": "s1"})
            for d in (scratch.disk_a, scratch.disk_b)]


def test_an_operation_taken_over_by_recovery_stops_with_a_clear_message(
        scratch: Scratch) -> None:
    mine, theirs = scratch.services(), scratch.services()
    try:
        domain = load_domain(scratch.config_dir, "web")
        plan = _plan(scratch)
        op = Operation(mine.app, mine.ledger_for(domain), mine.actor, mine.tools)
        op.start("create", "s1", {}, plan)
        other = theirs.app.get_domain(domain.key)
        assert other is not None
        actor = {**theirs.actor, "user": "mallory", "host": "elsewhere", "pid": 4242}
        other.decide_recovery(op.operation_id, "back", {}, actor,
                              {"host": "elsewhere", "pid": 4242, "start": 1, "boot_id": "b"})
        theirs.app.save(other)
        with pytest.raises(LedgerChanged) as changed:
            op.run(plan)
        assert LedgerChanged.exit_code == 3
        message = str(changed.value)
        assert "changed under operation" in message
        assert "recovery (back) by mallory on elsewhere pid 4242" in message
        assert tags(scratch.disk_a) == [] and tags(scratch.disk_b) == []  # it stopped first
    finally:
        mine.close()
        theirs.close()


def test_a_ledger_locked_past_the_busy_timeout_is_a_failed_step(
        scratch: Scratch, monkeypatch: pytest.MonkeyPatch) -> None:
    write_pattern(scratch.disk_a, 0x11)
    # the fake qemu-img (a child process) takes 3 s to tag the second disk, then does
    monkeypatch.setenv("XLSNAP_TEST_FAIL", json.dumps(
        [["snapshot -c", str(scratch.disk_b), "#sleep=3", "#pass"]]))
    svc = scratch.services()
    svc.sync()  # makes the home folder and the ledger
    app = LedgerApp(str(scratch.ledger), lock_timeout=1)
    try:
        domain = load_domain(scratch.config_dir, "web")
        svc.tools.qemu_img = QemuImg(FAKE)
        plan = _plan(scratch)
        op = Operation(app, svc.ledger_for(domain), svc.actor, svc.tools)
        op.start("create", "s1", {}, plan)
        failures: list[BaseException] = []

        def run() -> None:
            try:
                op.run(plan)
            except BaseException as exc:  # noqa: BLE001 - handed to the test thread
                failures.append(exc)

        worker = threading.Thread(target=run)
        worker.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not _tagged(scratch.disk_a):
            time.sleep(0.05)
        holder = subprocess.Popen(
            [sys.executable, "-c", "import sqlite3, sys; db = sqlite3.connect(sys.argv[1], "
             "isolation_level=None); db.execute('BEGIN IMMEDIATE'); print('held', flush=True);"
             " sys.stdin.read()", str(scratch.ledger)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        worker.join(timeout=60)
        holder.communicate("", timeout=30)
        assert len(failures) == 1 and isinstance(failures[0], LedgerWriteFailed), failures
        message = str(failures[0])
        assert message.startswith("ledger locked by another process for too long")
        assert "undid internal-snapshot-create" in message and "xlsnap recover web" in message
        assert tags(scratch.disk_a) == [] and tags(scratch.disk_b) == []
        assert read_pattern(scratch.disk_a, 0x11)
    finally:
        app.close()
        svc.close()
