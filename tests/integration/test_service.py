"""xlsnapd with the real client: same output, the peer as actor, the policy, signals and crashes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, Scratch, read_pattern, tags, tags_unlocked, write_pattern
from tests.service_fixture import NOBODY, Xlsnapd, start_xlsnapd

FAKE = str(REPO / "tests" / "fakes" / "failing_qemu_img.py")

pytestmark = pytest.mark.skipif(shutil.which("setpriv") is None or os.geteuid() != 0,
                                reason="needs root and setpriv (util-linux)")


def policy(allowed: Path) -> str:
    return (f'[[allow]]\nusers = ["nobody"]\ndomains = ["web"]\nrights = ["read", "create"]\n'
            f'paths = ["{allowed}"]\n')


@pytest.fixture
def xlsnapd(scratch: Scratch) -> Iterator[Xlsnapd]:
    service = start_xlsnapd(scratch.env())
    allowed = service.folder / "allowed"
    allowed.mkdir()
    service.policy.write_text(policy(allowed))
    service.reload()
    _wait_for(service.log, "reloaded")
    yield service
    service.stop()


def _wait_for(log: Path, text: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while text not in log.read_text():
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)


def _history(service: Xlsnapd, scratch: Scratch) -> list[dict]:
    run = service.run("history", "--json", "web", env=scratch.env())
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def _in_process(scratch: Scratch, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([os.sys.executable, "-m", "commands", "--no-service", *args],
                          capture_output=True, text=True, env=scratch.env(), cwd=REPO,
                          timeout=120)


def test_output_and_exit_codes_match_the_in_process_run(scratch: Scratch, xlsnapd) -> None:
    write_pattern(scratch.disk_a, 0x11)
    created = xlsnapd.run("snapshot-create", "-n", "s1", "web", env=scratch.env())
    assert created.returncode == 0, created.stderr
    write_pattern(scratch.disk_a, 0x22)
    for argv in (["snapshot-list", "web"], ["snapshot-list", "--json", "web"], ["--help"],
                 ["snapshot-delete", "web", "nope"], ["snapshot-list"], ["no-such-command"],
                 ["snapshot-info", "web", "s1"]):
        served, local = xlsnapd.run(*argv, env=scratch.env()), _in_process(scratch, *argv)
        assert (served.returncode, served.stdout, served.stderr) == \
            (local.returncode, local.stdout, local.stderr), argv
    reverted = xlsnapd.run("snapshot-revert", "web", "s1", env=scratch.env())
    assert reverted.returncode == 0, reverted.stderr
    assert read_pattern(scratch.disk_a, 0x11)


def test_the_actor_is_the_peer_and_forged_names_are_only_a_claim(scratch: Scratch,
                                                                 xlsnapd) -> None:
    forged = {**scratch.env(), "USER": "mallory", "SUDO_USER": "mallory", "LOGNAME": "mallory"}
    write_pattern(scratch.disk_a, 0x31)
    assert xlsnapd.run("snapshot-create", "-n", "s1", "web", env=forged).returncode == 0
    write_pattern(scratch.disk_a, 0x32)
    as_nobody = xlsnapd.run("snapshot-create", "-n", "s2", "web", as_user=NOBODY,
                            env={"PATH": "/usr/bin:/bin", "USER": "root", "SUDO_USER": "root"})
    assert as_nobody.returncode == 0, as_nobody.stderr
    taken = {row["data"]["name"]: row["actor"] for row in _history(xlsnapd, scratch)
             if row["event"] == "SnapshotTaken"}
    assert taken["s1"]["user"] == "root" and taken["s1"]["uid"] == 0
    assert taken["s1"]["sudo_user"] is None
    assert taken["s1"]["claim"] == {"user": "mallory", "sudo_user": "mallory", "uid": 0}
    assert taken["s2"]["user"] == "nobody" and taken["s2"]["uid"] == 65534
    assert taken["s2"]["claim"]["user"] == "root" and taken["s2"]["sudo_user"] is None
    assert set(tags(scratch.disk_a)) == {"s1", "s2"}
    assert read_pattern(scratch.disk_a, 0x32)


def test_a_missing_right_is_refused_in_one_line_and_recorded(scratch: Scratch,
                                                            xlsnapd) -> None:
    nobody_env = {"PATH": "/usr/bin:/bin"}
    write_pattern(scratch.disk_b, 0x41)
    assert xlsnapd.run("snapshot-create", "-n", "s1", "web", as_user=NOBODY,
                       env=nobody_env).returncode == 0
    refused = xlsnapd.run("snapshot-delete", "web", "s1", as_user=NOBODY, env=nobody_env)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "xlsnap: error: nobody lacks the 'delete' right on domain 'web' (snapshot-delete)"]
    assert tags(scratch.disk_a) == ["s1"] and tags(scratch.disk_b) == ["s1"]
    assert read_pattern(scratch.disk_b, 0x41)
    listed = xlsnapd.run("snapshot-list", "web", as_user=NOBODY, env=nobody_env)
    assert listed.returncode == 0 and "s1" in listed.stdout
    for argv in (["--home", "/tmp", "snapshot-list", "web"], ["history"],
                 ["recover", "web"], ["wrap", "web", "touch", "/root/owned"]):
        other = xlsnapd.run(*argv, as_user=NOBODY, env=nobody_env)
        assert other.returncode == 2 and len(other.stderr.splitlines()) == 1, argv
    assert xlsnapd.run("snapshot-list", "nosuch", as_user=NOBODY, env=nobody_env
                       ).returncode == 2
    rows = [r for r in _history(xlsnapd, scratch) if r["event"] == "AccessRefused"]
    assert [(r["data"]["command"], r["data"]["right"], r["actor"]["user"]) for r in rows] == [
        ("snapshot-delete", "delete", "nobody"), ("recover", "admin", "nobody")]
    shown = xlsnapd.run("history", "web", env=scratch.env()).stdout
    assert "REFUSED snapshot-delete" in shown
    # Those naming no domain (or an unknown one): in the ledger-wide history, by the peer
    everywhere = xlsnapd.run("history", "--json", "--actor", "nobody", env=scratch.env())
    rows = [r for r in json.loads(everywhere.stdout) if r["event"] == "AccessRefused"]
    assert [(r["domain"], r["data"]["command"], r["data"]["right"], r["actor"]["uid"])
            for r in rows] == [
        ("web", "snapshot-delete", "delete", 65534), ("*", "--home", None, 65534),
        ("*", "history", "read", 65534), ("web", "recover", "admin", 65534),
        ("web", "wrap", None, 65534), ("nosuch", "snapshot-list", "read", 65534)]
    assert "REFUSED history: nobody lacks the 'read' right on every domain" in \
        xlsnapd.run("history", env=scratch.env()).stdout
    for argv in (["seal"], ["verify"], ["replay", "--at-event", "12", "web"],
                 ["projections", "rebuild"]):
        assert xlsnapd.run(*argv, env=scratch.env()).returncode == 0, argv


def test_paths_outside_the_grant_and_unreadable_files_are_refused(scratch: Scratch,
                                                                  xlsnapd) -> None:
    nobody_env = {"PATH": "/usr/bin:/bin"}
    write_pattern(scratch.disk_a, 0x51)
    cfg = xlsnapd.folder / "snap.cfg"
    cfg.write_text('name = "s1"\ndisk = ["xvda=/var/tmp/xlsnap-outside.qcow2,type=external"]\n')
    cfg.chmod(0o644)
    outside = xlsnapd.run("snapshot-create", "web", str(cfg), as_user=NOBODY, env=nobody_env)
    assert outside.returncode == 2
    assert "/var/tmp/xlsnap-outside.qcow2 is outside the folders" in outside.stderr
    secret = scratch.root / "root-only.cfg"  # under pytest's 0700 folder
    secret.write_text('name = "s1"\n')
    unreadable = xlsnapd.run("snapshot-create", "web", str(secret), as_user=NOBODY,
                             env=nobody_env)
    assert unreadable.returncode == 2 and "Permission denied" in unreadable.stderr
    out = xlsnapd.run("export", "--out", str(xlsnapd.folder / "x.jsonl"), as_user=NOBODY,
                      env=nobody_env)
    assert out.returncode == 2
    assert not Path("/var/tmp/xlsnap-outside.qcow2").exists()
    assert tags(scratch.disk_a) == [] and tags(scratch.disk_b) == []
    assert read_pattern(scratch.disk_a, 0x51)
    inside = xlsnapd.folder / "allowed" / "a-s1.qcow2"
    cfg.write_text(f'name = "s1"\ndisk = ["xvda={inside},type=external"]\n')
    allowed = xlsnapd.run("snapshot-create", "web", str(cfg), as_user=NOBODY, env=nobody_env)
    assert allowed.returncode == 0, allowed.stderr
    assert inside.exists()


def test_files_xlsnapd_creates_must_lie_in_folders_only_root_can_change(scratch: Scratch,
                                                                         xlsnapd) -> None:
    """Else the caller could swap a part of the path for a symlink after the check, and root
    would write where the link leads (a real uid plants the link)."""
    nobody_env = {"PATH": "/usr/bin:/bin"}
    write_pattern(scratch.disk_a, 0x81)
    allowed = xlsnapd.folder / "allowed"
    theirs, open_to_all = allowed / "nobody", allowed / "shared"
    theirs.mkdir()
    os.chown(theirs, 65534, 65534)
    open_to_all.mkdir()
    open_to_all.chmod(0o777)
    victim = xlsnapd.folder / "victim"
    victim.write_bytes(b"root's\n")
    cfg = xlsnapd.folder / "snap.cfg"
    for folder, why in ((theirs, f"{theirs} belongs to uid 65534, not root"),
                        (open_to_all, f"{open_to_all} is writable by others than root")):
        overlay = folder / "a-s1.qcow2"
        cfg.write_text(f'name = "s1"\ndisk = ["xvda={overlay},type=external"]\n')
        cfg.chmod(0o644)
        refused = xlsnapd.run("snapshot-create", "web", str(cfg), as_user=NOBODY,
                              env=nobody_env)
        assert refused.returncode == 2
        assert refused.stderr.splitlines() == [
            f"xlsnap: error: {overlay}: {why}, so the path xlsnapd would create could be "
            "redirected; use a folder only root can change"]
        assert not overlay.exists()
    planted = theirs / "a-s1.qcow2"  # what nobody could do between a check and the use
    subprocess.run([*NOBODY, "ln", "-s", str(victim), str(planted)], check=True, timeout=30)
    cfg.write_text(f'name = "s1"\ndisk = ["xvda={planted},type=external"]\n')
    assert xlsnapd.run("snapshot-create", "web", str(cfg), as_user=NOBODY,
                       env=nobody_env).returncode == 2
    assert victim.read_bytes() == b"root's\n"
    assert tags(scratch.disk_a) == [] and tags(scratch.disk_b) == []
    assert read_pattern(scratch.disk_a, 0x81)
    rows = [r for r in _history(xlsnapd, scratch) if r["event"] == "AccessRefused"]
    assert [(r["data"]["command"], r["actor"]["user"]) for r in rows] == \
        [("snapshot-create", "nobody")] * 3


def _hanging_create(scratch: Scratch, service: Xlsnapd, folder: Path) -> subprocess.Popen:
    """A create through the service whose second disk's qemu-img hangs (then fails)."""
    env = {**scratch.env(), "XLSNAP_QEMU_IMG": FAKE,
           "XLSNAP_TEST_FAIL": json.dumps([["snapshot -c", str(scratch.disk_b), "#sleep=30"]]),
           "XLSNAP_TEST_FAIL_COUNTER": str(scratch.root / "fail-counter")}
    # Started with SIGINT/SIGTERM blocked, as a parent may leave them (the mask is inherited).
    proc = subprocess.Popen(service.client_argv("snapshot-create", "-n", "s1", "web"),
                            env=service.client_env(env), cwd=REPO,
                            stdout=(folder / "out").open("w"), stderr=(folder / "err").open("w"),
                            preexec_fn=lambda: signal.pthread_sigmask(
                                signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM}))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if "s1" in tags_unlocked(scratch.disk_a):
                break
        except subprocess.CalledProcessError:
            pass
        time.sleep(0.05)
    time.sleep(0.3)  # now inside the hanging second step
    return proc


def test_ctrl_c_in_the_client_undoes_as_in_process(scratch: Scratch, xlsnapd) -> None:
    write_pattern(scratch.disk_a, 0x61)
    proc = _hanging_create(scratch, xlsnapd, scratch.root)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 1
    assert "interrupted" in (scratch.root / "err").read_text()
    assert tags(scratch.disk_a) == [] and tags(scratch.disk_b) == []
    assert read_pattern(scratch.disk_a, 0x61)
    assert _history(xlsnapd, scratch)[-1]["data"]["outcome"] == "compensated"


def test_a_killed_service_leaves_the_operation_in_flight_for_recover(scratch: Scratch,
                                                                     xlsnapd) -> None:
    write_pattern(scratch.disk_a, 0x71)
    proc = _hanging_create(scratch, xlsnapd, scratch.root)
    xlsnapd.proc.kill()
    assert proc.wait(timeout=30) == 3
    assert "xlsnap recover" in (scratch.root / "err").read_text()
    busy = _in_process(scratch, "snapshot-list", "web")
    assert "in flight" in busy.stderr or "recover" in busy.stderr or busy.returncode == 0
    deadline = time.monotonic() + 20
    while True:  # the worker dies with the service, a moment after the client hears of it
        recovered = _in_process(scratch, "recover", "web")
        if "still running" not in recovered.stderr or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert recovered.returncode == 0, recovered.stderr
    assert tags(scratch.disk_a) == [] and tags(scratch.disk_b) == []
    assert read_pattern(scratch.disk_a, 0x71)


def test_a_malformed_policy_is_refused_at_start_and_on_reload(scratch: Scratch,
                                                             xlsnapd) -> None:
    bad = '[[allow]]\nusers = ["nobody"]\nrights = ["read", "wrte"]\n'
    with pytest.raises(RuntimeError, match=r"policy.toml:1: unknown right 'wrte'"):
        start_xlsnapd(scratch.env(), bad)
    xlsnapd.policy.write_text(bad)
    xlsnapd.reload()
    _wait_for(xlsnapd.log, "not reloaded, the old one stays")
    nobody_env = {"PATH": "/usr/bin:/bin"}
    assert xlsnapd.run("snapshot-list", "web", as_user=NOBODY, env=nobody_env).returncode == 0
    xlsnapd.policy.write_text("")
    xlsnapd.reload()
    _wait_for(xlsnapd.log, "reloaded\n")
    refused = xlsnapd.run("snapshot-list", "web", as_user=NOBODY, env=nobody_env)
    assert refused.returncode == 2 and "'read' right" in refused.stderr
