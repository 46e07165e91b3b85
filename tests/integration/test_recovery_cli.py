"""recover, check and adopt through the CLI, and tools that fail for real."""

from __future__ import annotations

import pytest

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO, Scratch, qemu_img, read_pattern, tags, write_pattern

FAKE = str(REPO / "tests" / "fakes" / "failing_qemu_img.py")


def killed_create(scratch: Scratch, name: str, fault: str = "kill:2:effect") -> None:
    env = {**scratch.env(), "XLSNAP_FAULT_INJECT": fault}
    proc = subprocess.run([sys.executable, "-m", "commands", "snapshot-create", "-n", name,
                           "web"], env=env, cwd=REPO, capture_output=True, timeout=60)
    assert proc.returncode == -9


def test_recover_undoes_a_killed_create_and_is_idempotent(scratch: Scratch, xlsnap) -> None:
    killed_create(scratch, "s1")
    listed = xlsnap("snapshot-list", "web")
    assert "in flight" in listed.err and "xlsnap recover web" in listed.err
    assert xlsnap("snapshot-create", "-n", "s2", "web").code == 3
    run = xlsnap("recover", "web")
    assert run.code == 0 and "undid create 's1'" in run.out
    assert tags(scratch.disk_a) == [] and tags(scratch.disk_b) == []
    events = json.loads(xlsnap("history", "--json", "web").out)
    decided = [e for e in events if e["event"] == "RecoveryDecided"]
    assert len(decided) == 1 and decided[0]["data"]["decision"] == "back"
    assert decided[0]["data"]["evidence"]["2"]["probe"] == {"tags_named": 1}
    again = xlsnap("recover", "web")
    assert again.code == 0 and "nothing in flight" in again.out
    assert len(json.loads(xlsnap("history", "--json", "web").out)) == len(events)
    assert xlsnap("check", "web").code == 0


def test_recover_all_finishes_a_create_killed_after_its_last_step(scratch: Scratch,
                                                                  xlsnap) -> None:
    killed_create(scratch, "s1", fault="kill:3:outcome")
    run = xlsnap("recover", "--all")
    assert run.code == 0 and "finished create 's1'" in run.out
    rows = json.loads(xlsnap("snapshot-list", "--json", "web").out)
    assert [(r["name"], r["current"]) for r in rows] == [("s1", True)]
    assert xlsnap("recover", "--all").out.strip() == "Nothing in flight"


def test_recover_needs_a_domain_or_all(scratch: Scratch, xlsnap) -> None:
    assert xlsnap("recover").code == 2
    assert xlsnap("recover", "--all", "web").code == 2


def test_check_reports_hand_made_and_missing_tags(scratch: Scratch, xlsnap) -> None:
    assert xlsnap("snapshot-create", "-n", "s1", "web").code == 0
    assert xlsnap("check", "web").code == 0
    qemu_img("snapshot", "-c", "manual", str(scratch.disk_a))
    qemu_img("snapshot", "-d", "s1", str(scratch.disk_b))
    (scratch.domain_dir / "snapshotdata-s1.libxl-json").unlink()
    run = xlsnap("check", "--json", "web")
    assert run.code == 3
    kinds = sorted((d["kind"], d.get("tag") or d.get("device") or "") for d in json.loads(run.out))
    assert kinds == [("foreign-tag", "manual"), ("metadata-missing", ""),
                     ("tag-missing", "xvdb")]
    assert xlsnap("snapshot-revert", "-n", "s1", "web").code == 3


def test_adopted_tag_can_be_listed_reverted_and_deleted(scratch: Scratch, xlsnap) -> None:
    write_pattern(scratch.disk_a, 0x41)
    write_pattern(scratch.disk_b, 0x42)
    for disk in (scratch.disk_a, scratch.disk_b):
        qemu_img("snapshot", "-c", "manual", str(disk))
    write_pattern(scratch.disk_a, 0x51)
    write_pattern(scratch.disk_b, 0x52)
    run = xlsnap("adopt", "web", "manual")
    assert run.code == 0, run.err
    assert xlsnap("check", "web").code == 0
    record = json.loads(xlsnap("snapshot-list", "-l", "web", "manual").out)
    assert record["adopted"] is True
    assert [d["device"] for d in record["disks"]] == ["xvda", "xvdb"]
    history = json.loads(xlsnap("history", "--json", "web").out)
    assert any(e["event"] == "OperationStarted" and e["data"]["kind"] == "adopt"
               for e in history)
    assert xlsnap("snapshot-revert", "-n", "manual", "web").code == 0
    assert read_pattern(scratch.disk_a, 0x41) and read_pattern(scratch.disk_b, 0x42)
    assert xlsnap("snapshot-delete", "-n", "manual", "web").code == 0
    assert tags(scratch.disk_a) == [] and tags(scratch.disk_b) == []


def test_adopt_of_a_tag_on_some_disks_only_is_refused(scratch: Scratch, xlsnap) -> None:
    write_pattern(scratch.disk_b, 0x42)
    qemu_img("snapshot", "-c", "manual", str(scratch.disk_a))
    run = xlsnap("adopt", "web", "manual")
    assert run.code == 2 and "not on xvdb" in run.err, run.err
    assert not scratch.ledger.exists() or "manual" not in xlsnap("snapshot-list", "web").out
    assert tags(scratch.disk_a) == ["manual"] and tags(scratch.disk_b) == []
    assert read_pattern(scratch.disk_b, 0x42)


def test_adopt_refuses_unknown_tags_and_taken_names(scratch: Scratch, xlsnap) -> None:
    assert xlsnap("adopt", "web", "nosuch").code == 2
    assert xlsnap("snapshot-create", "-n", "s1", "web").code == 0
    assert xlsnap("adopt", "web", "s1").code == 2


def test_an_image_locked_by_another_process_fails_cleanly(scratch: Scratch, xlsnap) -> None:
    holder = subprocess.Popen(["qemu-io", "-f", "qcow2", str(scratch.disk_b)],
                              stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        run = xlsnap("snapshot-create", "-n", "s1", "web")
    finally:
        holder.communicate(b"quit\n", timeout=30)
    assert run.code == 1 and "lock" in run.err and "undone" in run.err
    assert tags(scratch.disk_a) == [] and tags(scratch.disk_b) == []
    assert json.loads(xlsnap("snapshot-list", "--json", "web").out) == []


def test_a_hanging_tool_times_out_and_is_undone(scratch: Scratch, xlsnap) -> None:
    env = {**scratch.env(), "XLSNAP_QEMU_IMG": FAKE, "XLSNAP_TOOL_TIMEOUT": "1",
           "XLSNAP_TEST_FAIL": json.dumps([["snapshot -c", str(scratch.disk_b), "#sleep=20"]])}
    run = xlsnap("snapshot-create", "-n", "s1", "web", env=env)
    assert run.code == 1 and "timed out" in run.err
    assert tags(scratch.disk_a) == [] and tags(scratch.disk_b) == []


def test_metadata_is_never_written_through_a_planted_symlink(scratch: Scratch, xlsnap) -> None:
    victim = scratch.root / "victim"
    victim.write_text("keep me")
    scratch.domain_dir.mkdir(parents=True)
    (scratch.domain_dir / "snapshotdata-s1.libxl-json").symlink_to(victim)
    run = xlsnap("snapshot-create", "-n", "s1", "web")
    assert run.code == 2 and "exists already" in run.err  # refused before any change
    (scratch.domain_dir / "snapshotdata-s1.libxl-json").unlink()
    os.rmdir(scratch.domain_dir)
    scratch.domain_dir.symlink_to(scratch.root)
    run = xlsnap("snapshot-create", "-n", "s1", "web")
    assert run.code == 1 and "symbolic link" in run.err
    assert victim.read_text() == "keep me" and tags(scratch.disk_a) == []


@pytest.mark.sqlite_only
def test_state_folders_are_private(scratch: Scratch, xlsnap) -> None:
    assert xlsnap("snapshot-create", "-n", "s1", "web").code == 0
    assert scratch.home.stat().st_mode & 0o777 == 0o700
    assert scratch.domain_dir.stat().st_mode & 0o777 == 0o700
    assert scratch.ledger.stat().st_mode & 0o777 == 0o600
    assert not [p for p in Path(scratch.domain_dir).iterdir() if p.name.startswith(".")]


def test_recovery_retries_a_failing_undo(scratch: Scratch, xlsnap) -> None:
    killed_create(scratch, "s1")
    env = {**scratch.env(), "XLSNAP_QEMU_IMG": FAKE,
           "XLSNAP_TEST_FAIL": json.dumps([["snapshot -d", str(scratch.disk_b), "#1"]]),
           "XLSNAP_TEST_FAIL_COUNTER": str(scratch.root / "counter")}
    run = xlsnap("recover", "web", env=env)
    assert run.code == 0, run.err
    assert tags(scratch.disk_b) == [] and tags(scratch.disk_a) == []
    undo_b = [e for e in json.loads(xlsnap("history", "--json", "web").out)
              if e["event"] == "StepFinished" and e["data"]["phase"] == "undo"
              and e["data"]["step"] == 2]
    assert [e["data"]["ok"] for e in undo_b] == [False, True]
