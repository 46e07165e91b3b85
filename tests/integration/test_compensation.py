"""A failing or interrupted side effect is undone and recorded; nothing is left half-made."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, Scratch, read_pattern, tags, tags_unlocked, write_pattern

FAKE = str(REPO / "tests" / "fakes" / "failing_qemu_img.py")


def failing_env(scratch: Scratch, *rules: list[str]) -> dict[str, str]:
    """Environment that runs xlsnap with a qemu-img failing on the given argv rules."""
    return {**scratch.env(), "XLSNAP_QEMU_IMG": FAKE, "XLSNAP_TEST_FAIL": json.dumps(rules),
            "XLSNAP_TEST_FAIL_COUNTER": str(scratch.root / "fail-counter")}


def history(xlsnap) -> list[dict]:
    return json.loads(xlsnap("history", "--json", "web").out)


def test_failed_second_disk_undoes_the_first(scratch: Scratch, xlsnap) -> None:
    env = failing_env(scratch, ["snapshot -c", str(scratch.disk_b)])
    run = xlsnap("snapshot-create", "-n", "s1", "web", env=env)
    assert run.code == 1
    assert "internal-snapshot-create" in run.err and "injected failure" in run.err
    assert "nothing changed" in run.err and len(run.err.strip().splitlines()) == 1
    assert tags(scratch.disk_a) == [] and tags(scratch.disk_b) == []
    assert scratch.snapshot_files() == []
    assert json.loads(xlsnap("snapshot-list", "--json", "web").out) == []
    events = history(xlsnap)
    undo = [e for e in events if e["event"] == "StepStarted" and e["data"]["phase"] == "undo"]
    assert [e["data"]["target"] for e in undo] == [str(scratch.disk_a)]
    assert events[-1]["event"] == "OperationFinished"
    assert events[-1]["data"]["outcome"] == "compensated"
    assert xlsnap("snapshot-create", "-n", "s1", "web").code == 0  # the name is free again


def test_failed_overlay_removes_the_other_overlay_and_keeps_config(scratch: Scratch,
                                                                   xlsnap) -> None:
    cfg = scratch.root / "ext.cfg"
    cfg.write_text('name="e"\ntype="external"\n')
    before = scratch.config.read_bytes()
    env = failing_env(scratch, ["create", "b.e.qcow2"])
    run = xlsnap("snapshot-create", "web", str(cfg), env=env)
    assert run.code == 1, run.err
    assert sorted(p.name for p in scratch.images.iterdir()) == ["a.qcow2", "b.qcow2"]
    assert scratch.config.read_bytes() == before
    assert not Path(f"{scratch.config}.before-e").exists()


def test_failed_revert_puts_reverted_disks_back(scratch: Scratch, xlsnap) -> None:
    write_pattern(scratch.disk_a, 0x11)
    assert xlsnap("snapshot-create", "-n", "s1", "web").code == 0
    assert xlsnap("snapshot-create", "-n", "s2", "web").code == 0
    write_pattern(scratch.disk_a, 0x22)
    env = failing_env(scratch, ["snapshot -a", str(scratch.disk_b)])
    run = xlsnap("snapshot-revert", "-n", "s1", "web", env=env)
    assert run.code == 1, run.err
    assert read_pattern(scratch.disk_a, 0x22)  # disk a was reverted, then put back
    assert tags(scratch.disk_a) == ["s1", "s2"] and tags(scratch.disk_b) == ["s1", "s2"]
    rows = json.loads(xlsnap("snapshot-list", "--json", "web").out)
    assert [r["name"] for r in rows if r["current"]] == ["s2"]


def test_delete_failing_midway_marks_snapshot_incomplete_then_finishes(scratch: Scratch,
                                                                       xlsnap) -> None:
    assert xlsnap("snapshot-create", "-n", "s1", "web").code == 0
    env = failing_env(scratch, ["snapshot -d", str(scratch.disk_b)])
    run = xlsnap("snapshot-delete", "-n", "s1", "web", env=env)
    assert run.code == 3 and "incomplete" in run.err  # part-way: not "nothing changed"
    assert tags(scratch.disk_a) == [] and tags(scratch.disk_b) == ["s1"]
    assert "(incomplete)" in xlsnap("snapshot-list", "web").out
    assert xlsnap("snapshot-revert", "-n", "s1", "web").code == 2
    assert xlsnap("snapshot-delete", "-n", "s1", "web").code == 0
    assert tags(scratch.disk_b) == [] and scratch.snapshot_files() == []


def test_failed_undo_leaves_operation_in_flight_and_blocks_others(scratch: Scratch,
                                                                  xlsnap) -> None:
    env = failing_env(scratch, ["snapshot -c", str(scratch.disk_b)],
                      ["snapshot -d", str(scratch.disk_a)])
    run = xlsnap("snapshot-create", "-n", "s1", "web", env=env)
    assert run.code == 3 and "xlsnap recover web" in run.err  # the undo failed
    blocked = xlsnap("snapshot-create", "-n", "s2", "web")
    assert blocked.code == 3
    assert "in flight" in blocked.err and "create 's1'" in blocked.err
    assert tags(scratch.disk_b) == []


def test_missing_qemu_img_fails_cleanly(scratch: Scratch, xlsnap) -> None:
    env = {**scratch.env(), "XLSNAP_QEMU_IMG": str(scratch.root / "no-such-qemu-img")}
    run = xlsnap("snapshot-create", "-n", "s1", "web", env=env)
    assert run.code != 0 and "not installed" in run.err and "Traceback" not in run.err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_interrupted_create_is_undone(scratch: Scratch, xlsnap, sig: signal.Signals) -> None:
    env = failing_env(scratch, ["snapshot -c", str(scratch.disk_b), "#sleep=30"])
    proc = subprocess.Popen([sys.executable, "-m", "commands", "snapshot-create", "-n", "s1",
                             "web"], env=env, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not _has_tag(scratch.disk_a, "s1"):
        time.sleep(0.05)
    time.sleep(0.3)  # now inside the hanging second step
    os.kill(proc.pid, sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, err
    assert "interrupted" in err
    assert tags(scratch.disk_a) == [] and tags(scratch.disk_b) == []
    assert history(xlsnap)[-1]["data"]["outcome"] == "compensated"


def _has_tag(path: Path, name: str) -> bool:
    """Poll-friendly: an image still locked by the writer counts as not yet tagged."""
    try:
        return name in tags_unlocked(path)
    except subprocess.CalledProcessError:
        return False
