"""A prune of several snapshots of a two-disk domain is ONE operation: killed at any
step point, ``recover`` finishes it, and each snapshot is either wholly deleted (both
disks' tags, its metadata file, its ledger entry) or wholly kept, its content intact."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from commands.handlers.create import create_snapshot
from commands.handlers.messages import CreateSnapshot
from commands.handlers.recover import recover_all
from tests.conftest import REPO, Scratch, read_pattern, tag_reads, tags, write_pattern
from tests.e2e.test_bad_input import event_count

NAMES = ("s0", "s1", "s2", "s3")
STEPS_EACH = 3          # disk a's tag, disk b's tag, the metadata file
PRUNE = ["prune", "--keep-last", "1", "web"]     # drops s0, s1, s2 (9 steps)


def _four_snapshots(scratch: Scratch) -> None:
    svc = scratch.services()
    try:
        for k, name in enumerate(NAMES):
            write_pattern(scratch.disk_a, 0x40 + k)
            write_pattern(scratch.disk_b, 0x60 + k)
            create_snapshot(CreateSnapshot("web", name), svc)
        write_pattern(scratch.disk_a, 0x4F)
        write_pattern(scratch.disk_b, 0x6F)
    finally:
        svc.close()


def _prune(scratch: Scratch, fault: str | None = None) -> subprocess.CompletedProcess:
    env = scratch.env()
    if fault:
        env["XLSNAP_FAULT_INJECT"] = fault
    return subprocess.run([sys.executable, "-m", "commands", *PRUNE], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def assert_whole(scratch: Scratch, gone: set[str], incomplete: str | None = None) -> None:
    """Snapshots in ``gone`` are gone from both disks, the metadata and the ledger; the
    others read back their patterns on both disks; the current disks are untouched."""
    kept = [n for n in NAMES if n not in gone]
    svc = scratch.services()
    try:
        entries = svc.ledger_for(svc.resolve("web").domain).entries
        assert svc.ledger_for(svc.resolve("web").domain).in_flight is None
    finally:
        svc.close()
    assert sorted(entries) == kept
    assert tags(scratch.disk_b) == kept
    assert tags(scratch.disk_a) == [n for n in kept if n != incomplete]
    assert scratch.snapshot_files() == [f"snapshotdata-{n}.libxl-json" for n in kept]
    for k, name in enumerate(NAMES):
        if name in kept:
            assert tag_reads(scratch.disk_b, name, 0x60 + k), name
            if name != incomplete:
                assert tag_reads(scratch.disk_a, name, 0x40 + k), name
    assert read_pattern(scratch.disk_a, 0x4F) and read_pattern(scratch.disk_b, 0x6F)


KILLS = [f"kill:{step}:{point}" for step in (1, 2, 3, 4, 9)
         for point in ("intent", "effect", "outcome")]


@pytest.mark.slow
@pytest.mark.parametrize("fault", KILLS)
def test_a_killed_prune_is_finished_by_recover_snapshot_by_snapshot(
        scratch: Scratch, fault: str) -> None:
    _four_snapshots(scratch)
    proc = _prune(scratch, fault)
    assert proc.returncode == -9, proc.stderr
    svc = scratch.services()
    try:
        [result] = recover_all(svc)
    finally:
        svc.close()
    assert result.decision == "forward", result
    assert_whole(scratch, {"s0", "s1", "s2"})
    before = event_count(scratch.ledger)
    assert _prune(scratch).returncode == 0        # nothing left to do, nothing half-done
    assert event_count(scratch.ledger) == before
    assert_whole(scratch, {"s0", "s1", "s2"})


def test_a_prune_killed_between_two_snapshots_has_recorded_the_first(
        scratch: Scratch) -> None:
    _four_snapshots(scratch)
    assert _prune(scratch, f"kill:{STEPS_EACH + 1}:intent").returncode == -9
    svc = scratch.services()
    try:
        ledger = svc.ledger_for(svc.resolve("web").domain)
        assert ledger.in_flight is not None and ledger.in_flight["kind"] == "prune"
        assert "s0" not in ledger.entries and "s1" in ledger.entries
        assert [r.decision for r in recover_all(svc)] == ["forward"]
    finally:
        svc.close()
    assert_whole(scratch, {"s0", "s1", "s2"})


@pytest.mark.parametrize("step, code, gone, incomplete", [
    (1, 1, set(), None),              # nothing done yet: compensated
    (2, 3, set(), "s0"),              # disk a lost s0's tag: s0 incomplete, rest kept
    (STEPS_EACH + 1, 3, {"s0"}, None),  # s0 deleted whole, s1 and s2 kept
])
def test_a_failing_step_stops_the_prune_after_whole_snapshots(
        scratch: Scratch, step: int, code: int, gone: set[str], incomplete: str | None) -> None:
    _four_snapshots(scratch)
    proc = _prune(scratch, f"fail:{step}:intent")
    assert proc.returncode == code, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert_whole(scratch, gone, incomplete)


def test_ctrl_c_stops_the_prune_after_the_snapshot_in_hand(scratch: Scratch) -> None:
    """A real SIGINT while s1's first tag is being deleted: s1 is finished, s2 kept."""
    _four_snapshots(scratch)
    folder = scratch.root / "fault"
    folder.mkdir()
    env = {**scratch.env(), "XLSNAP_FAULT_INJECT": f"pause:{STEPS_EACH + 1}:intent",
           "XLSNAP_FAULT_DIR": str(folder)}
    proc = subprocess.Popen([sys.executable, "-m", "commands", *PRUNE], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for _ in range(600):
        if (folder / "paused").exists() or proc.poll() is not None:
            break
        time.sleep(0.1)
    assert (folder / "paused").exists(), proc.communicate(timeout=60)
    proc.send_signal(signal.SIGINT)
    (folder / "resume").touch()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == [
        "xlsnap: error: prune interrupted: 2 of 3 snapshots deleted, the rest (from 's2' on) kept; "
        "run prune again to go on"]
    assert_whole(scratch, {"s0", "s1"})
    svc = scratch.services()
    try:
        assert recover_all(svc) == []                   # closed: nothing in flight
    finally:
        svc.close()
    assert _prune(scratch).returncode == 0              # running it again goes on
    assert_whole(scratch, {"s0", "s1", "s2"})
