"""An operation's owner: ``recover`` never undoes a running one, and others are told "busy".

A real second process runs a slow create (the failing qemu-img fake, sleeping before it
runs the real qemu-img on the second disk) while ``recover`` and another create are
called; a SIGKILLed owner is recovered; six processes race on one domain.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import msgpack
import pytest

from tests.conftest import REPO, Scratch, read_pattern, tags, tags_unlocked, write_pattern

FAKE = str(REPO / "tests" / "fakes" / "failing_qemu_img.py")


def slow_env(scratch: Scratch, seconds: float) -> dict[str, str]:
    """xlsnap whose qemu-img takes ``seconds`` longer to tag the second disk, then does."""
    rule = ["snapshot -c", str(scratch.disk_b), f"#sleep={seconds}", "#pass"]
    return {**scratch.env(), "XLSNAP_QEMU_IMG": FAKE, "XLSNAP_TEST_FAIL": json.dumps([rule])}


def start(scratch: Scratch, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "commands", *args], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_tag(path: Path, tag: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if tag in tags_unlocked(path):
                return
        except subprocess.CalledProcessError:
            pass  # still locked by the writer
        time.sleep(0.05)
    raise AssertionError(f"no tag {tag} on {path} (exit {proc.poll()})")


def events(xlsnap) -> list[dict]:
    return json.loads(xlsnap("history", "--json", "web").out)


def owner_pid(xlsnap, proc: subprocess.Popen[str]) -> int:
    """The pid recorded as the operation's owner: the client itself in process, the worker
    running its command through xlsnapd (``--via-service``)."""
    started = [e for e in events(xlsnap) if e["event"] == "OperationStarted"][-1]
    pid = started["data"]["owner"]["pid"]
    if "XLSNAP_SOCKET" not in os.environ:
        assert pid == proc.pid
    return pid


def test_recover_refuses_a_running_create_which_then_finishes(scratch: Scratch, xlsnap) -> None:
    write_pattern(scratch.disk_a, 0x11)
    write_pattern(scratch.disk_b, 0x12)
    proc = start(scratch, slow_env(scratch, 4), "snapshot-create", "-n", "s1", "web")
    wait_for_tag(scratch.disk_a, "s1", proc)
    refused = xlsnap("recover", "web")
    assert refused.code == 3, refused.err
    pid = owner_pid(xlsnap, proc)
    assert f"still running, pid {pid} since " in refused.err
    assert "create 's1'" in refused.err and len(refused.err.strip().splitlines()) == 1
    busy = xlsnap("snapshot-create", "-n", "s2", "web")
    assert busy.code == 3 and f"busy: create 's1' by root pid {pid} since" in busy.err
    assert "recover" not in busy.err
    listing = xlsnap("snapshot-list", "web")
    assert f"busy: operation" in listing.err and "recover" not in listing.err
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert tags(scratch.disk_a) == ["s1"] and tags(scratch.disk_b) == ["s1"]
    assert [r["name"] for r in json.loads(xlsnap("snapshot-list", "--json", "web").out)] == ["s1"]
    assert xlsnap("check", "web").code == 0
    assert [e["event"] for e in events(xlsnap)].count("RecoveryDecided") == 0
    write_pattern(scratch.disk_a, 0x21)
    write_pattern(scratch.disk_b, 0x22)
    assert xlsnap("snapshot-revert", "-n", "s1", "web").code == 0
    assert read_pattern(scratch.disk_a, 0x11) and read_pattern(scratch.disk_b, 0x12)


def test_a_killed_owner_is_recovered(scratch: Scratch, xlsnap) -> None:
    write_pattern(scratch.disk_a, 0x11)
    proc = start(scratch, slow_env(scratch, 30), "snapshot-create", "-n", "s1", "web")
    wait_for_tag(scratch.disk_a, "s1", proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    blocked = xlsnap("snapshot-create", "-n", "s2", "web")
    assert blocked.code == 3 and "its process is gone: run 'xlsnap recover web'" in blocked.err
    run = xlsnap("recover", "web")
    assert run.code == 0 and "undid create 's1'" in run.out, run.err
    assert tags(scratch.disk_a) == [] and tags(scratch.disk_b) == []
    assert read_pattern(scratch.disk_a, 0x11)
    decided = [e for e in events(xlsnap) if e["event"] == "RecoveryDecided"]
    assert len(decided) == 1 and "forced" not in decided[0]["data"]["evidence"]


def _rewrite_started(ledger: Path, change) -> None:
    """Edit the stored ``OperationStarted`` event (as an older xlsnap, or another host,
    would have written it): the ledger's own bytes, decoded and encoded with msgpack."""
    db = sqlite3.connect(ledger)
    with db:
        rows = db.execute("SELECT originator_id, originator_version, state FROM stored_events "
                          "WHERE topic LIKE '%OperationStarted'").fetchall()
        assert len(rows) == 1
        oid, version, state = rows[0]
        data = msgpack.unpackb(state, raw=False, strict_map_key=False)
        change(data)
        db.execute("UPDATE stored_events SET state=? WHERE originator_id=? AND "
                   "originator_version=?", (msgpack.packb(data, use_bin_type=True), oid, version))
    db.close()


def _killed_create(scratch: Scratch) -> None:
    proc = start(scratch, slow_env(scratch, 30), "snapshot-create", "-n", "s1", "web")
    wait_for_tag(scratch.disk_a, "s1", proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)


@pytest.mark.sqlite_only
def test_an_operation_recorded_without_owner_still_loads_and_recovers(scratch: Scratch,
                                                                       xlsnap) -> None:
    _killed_create(scratch)
    _rewrite_started(scratch.ledger, lambda data: data.pop("owner"))
    blocked = xlsnap("snapshot-create", "-n", "s2", "web")
    assert blocked.code == 3 and "if its process is gone, run 'xlsnap recover web'" in blocked.err
    run = xlsnap("recover", "web")
    assert run.code == 0, run.err
    assert tags(scratch.disk_a) == [] and tags(scratch.disk_b) == []


@pytest.mark.sqlite_only
def test_an_owner_on_another_host_needs_force_which_is_recorded(scratch: Scratch,
                                                                 xlsnap) -> None:
    _killed_create(scratch)
    _rewrite_started(scratch.ledger,
                     lambda data: data["owner"].update(host="elsewhere.invalid"))
    busy = xlsnap("snapshot-create", "-n", "s2", "web")
    assert busy.code == 3 and "on elsewhere.invalid pid" in busy.err
    assert "recover --force web" in busy.err
    refused = xlsnap("recover", "web")
    assert refused.code == 3 and "recover --force web" in refused.err
    assert tags(scratch.disk_a) == ["s1"]  # nothing was done
    run = xlsnap("recover", "--force", "web")
    assert run.code == 0, run.err
    assert tags(scratch.disk_a) == [] and tags(scratch.disk_b) == []
    decided = [e for e in events(xlsnap) if e["event"] == "RecoveryDecided"]
    assert decided[0]["data"]["evidence"]["forced"]["owner"]["host"] == "elsewhere.invalid"
    assert decided[0]["actor"]["user"] == "root"


def _loop(env: dict[str, str], args: list[str], rounds: int) -> list[tuple[int, str]]:
    out = []
    for i in range(rounds):
        argv = [a.replace("{i}", str(i)) for a in args]
        proc = subprocess.run([sys.executable, "-m", "commands", *argv], env=env, cwd=REPO,
                              capture_output=True, text=True, timeout=300)
        out.append((proc.returncode, proc.stderr))
    return out


@pytest.mark.slow
def test_six_processes_creates_and_recovers_never_crash(scratch: Scratch, xlsnap) -> None:
    write_pattern(scratch.disk_a, 0x11)
    env = slow_env(scratch, 0.5)
    jobs = [["snapshot-create", "-n", f"p{k}-{{i}}", "web"] for k in range(3)]
    jobs += [["recover", "web"]] * 3
    with ThreadPoolExecutor(max_workers=6) as pool:
        futures = [pool.submit(_loop, env, job, 4) for job in jobs]
        results = [r for f in futures for r in f.result()]
    assert all(code in (0, 3) for code, _ in results), [r for r in results if r[0] not in (0, 3)]
    assert all("Traceback" not in err and "internal error" not in err for _, err in results)
    refusals = [err for code, err in results if code == 3]
    assert all(re.search(r"busy: |still running, |in flight", err) for err in refusals), refusals
    assert xlsnap("recover", "web").code == 0  # nothing left, or a killed one finished
    names = sorted(r["name"] for r in json.loads(xlsnap("snapshot-list", "--json", "web").out))
    assert names and sorted(tags(scratch.disk_a)) == names == sorted(tags(scratch.disk_b))
    assert xlsnap("check", "web").code == 0
    assert read_pattern(scratch.disk_a, 0x11)
    print(f"runs={len(results)} ok={sum(c == 0 for c, _ in results)} "
          f"busy={sum('busy: ' in e for _, e in results)} "
          f"still-running={sum('still running, ' in e for _, e in results)} "
          f"snapshots={len(names)}")
