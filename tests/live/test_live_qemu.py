"""Live snapshots of a real QEMU (TCG, no OS): disks and memory go back on revert.

Each test changes the guest after the snapshot, on a disk (qemu-io through the monitor)
and in RAM (its shared backing file), reverts, and proves both are as they were.
"""

from __future__ import annotations

import json
import socket
import os
import stat

import pytest

from commands.state.snapshot_metadata import libxl_record
from tests.live.conftest import LiveDomain

pytestmark = pytest.mark.slow
A, B = b"memory-at-snap-A", b"memory-later--B!"


def _prepare(live: LiveDomain) -> None:
    live.write("drv0", 0x11)
    live.write("drv1", 0x12)
    live.poke(A)


def _change(live: LiveDomain) -> None:
    live.write("drv0", 0x22)
    live.write("drv1", 0x23)
    live.poke(B)
    assert live.peek() == B


def test_domain_snapshot_with_memory_inside_qcow2_and_revert(live: LiveDomain) -> None:
    _prepare(live)
    run = live.xlsnap("--verbose", "snapshot-create", "-n", "s1", "web")
    assert run.code == 0, run.err
    assert "with memory (qemu, domain was running)" in run.out
    assert "toolstack qemu (chosen)" in run.err
    assert [s[1] for s in live.steps()] == ["domain-pause", "vm-snapshot-save",
                                           "domain-unpause", "metadata-write"]
    assert live.status() == "running"
    record = live.record("s1")
    assert record["memory_format"] == "qcow2-vmstate" and record["memory_size"] > 0
    metadata = live.home / record["domain"]["uuid"] / "snapshotdata-s1.libxl-json"
    assert json.loads(metadata.read_text()) == libxl_record(record)  # follows the ledger
    assert record["state"] == "running" and record["toolstack"] == "qemu"
    _change(live)
    run = live.xlsnap("snapshot-revert", "-n", "s1", "web")
    assert run.code == 0, run.err
    assert [s[1] for s in live.steps()] == ["domain-pause", "vm-safety-save", "vm-snapshot-load",
                                           "domain-unpause", "vm-safety-delete"]
    assert live.peek() == A
    assert live.vm.has_pattern("drv0", 0x11) and live.vm.has_pattern("drv1", 0x12)
    assert live.status() == "running"
    assert live.tags() == {"drv0": ("s1",), "drv1": ("s1",)}      # the safety tag is gone
    assert live.xlsnap("check", "web").code == 0


def test_revert_paused_and_running_choose_the_state_after(live: LiveDomain) -> None:
    assert live.xlsnap("snapshot-create", "-n", "s1", "web").code == 0
    assert live.xlsnap("snapshot-revert", "--paused", "-n", "s1", "web").code == 0
    assert live.status() == "paused"
    assert live.xlsnap("snapshot-revert", "--running", "-n", "s1", "web").code == 0
    assert live.status() == "running"
    both = live.xlsnap("snapshot-revert", "--running", "--paused", "-n", "s1", "web")
    assert both.code == 2 and len(both.err.strip().splitlines()) == 1


def test_snapshot_of_a_paused_domain_stays_paused(live: LiveDomain) -> None:
    live.qmp().stop()
    assert live.xlsnap("snapshot-create", "-n", "p1", "web").code == 0
    assert live.status() == "paused" and live.record("p1")["state"] == "paused"
    live.qmp().cont()
    assert live.xlsnap("snapshot-revert", "-n", "p1", "web").code == 0
    assert live.status() == "paused"                    # the snapshot's own state


def test_disk_only_snapshot_is_crash_consistent_and_reverts_with_a_cold_start(
        live: LiveDomain) -> None:
    _prepare(live)
    run = live.xlsnap("snapshot-create", "--disk-only", "-n", "d1", "web")
    assert run.code == 0, run.err
    assert "crash-consistent" in run.out
    assert [s[1] for s in live.steps()] == ["live-internal-snapshot", "metadata-write"]
    record = live.record("d1")
    assert record["crash_consistent"] is True and record["memory"] == "no"
    _change(live)
    old_pid = live.pid()
    run = live.xlsnap("snapshot-revert", "-n", "d1", "web")
    assert run.code == 0, run.err
    assert live.pid() != old_pid and live.status() == "running"  # booted again from d1
    assert live.tags() == {"drv0": ("d1",), "drv1": ("d1",)}
    live.stop_qemu()
    assert live.disk_has(live.disks[0], 0x11) and live.disk_has(live.disks[1], 0x12)


def test_external_snapshot_with_memory_file_and_revert(live: LiveDomain) -> None:
    _prepare(live)
    cfg = live.root / "ext.cfg"
    cfg.write_text('name = "e1"\ntype = "external"\n')
    run = live.xlsnap("snapshot-create", "web", str(cfg))
    assert run.code == 0, run.err
    overlays = [d.with_name(f"{d.stem}.e1.qcow2") for d in live.disks]
    assert live.live_files() == {"drv0": str(overlays[0]), "drv1": str(overlays[1])}
    record = live.record("e1")
    memory = live.home / record["domain"]["uuid"] / "e1.save"
    assert record["memory_file"] == str(memory) and record["memory_format"] == "qemu-migration"
    assert stat.S_IMODE(memory.stat().st_mode) == 0o600
    assert memory.read_bytes()[:4] == b"QEVM"
    assert [s[1] for s in live.steps()] == ["domain-pause", "live-external-snapshot",
                                           "memory-save", "domain-unpause", "metadata-write"]
    _change(live)
    run = live.xlsnap("snapshot-revert", "-n", "e1", "web")
    assert run.code == 0, run.err
    assert live.peek() == A and live.status() == "running"
    fresh = live.live_files()               # fresh overlays on the bases; e1's stay, leaves
    assert set(fresh.values()).isdisjoint(map(str, overlays))
    assert sorted(p.name for p in memory.parent.glob("*.save")) == ["e1.save"]
    live.stop_qemu()
    assert live.disk_has(fresh["drv0"], 0x11) and live.disk_has(fresh["drv1"], 0x12)
    assert live.disk_has(overlays[0], 0x22), "the branch that was current is gone"
    assert sorted(p.name for p in overlays[0].parent.iterdir()) == sorted(
        ["disk0.e1.qcow2", "disk0.qcow2", "disk1.e1.qcow2", "disk1.qcow2",
         *(os.path.basename(f) for f in fresh.values())])


def test_failed_snapshot_load_resumes_the_guest_as_it_was(live: LiveDomain) -> None:
    _prepare(live)
    assert live.xlsnap("snapshot-create", "-n", "s1", "web").code == 0
    _change(live)
    qmp = live.qmp()        # s1 replaced behind xlsnap's back by a tag without memory
    for device in ("drv0", "drv1"):
        qmp.delete_internal(device, "s1")
    qmp.snapshot_internal(["drv0", "drv1"], "s1")
    run = live.xlsnap("snapshot-revert", "-n", "s1", "web")
    assert run.code == 1 and "vm-snapshot-load" in run.err and "nothing changed" in run.err
    assert live.status() == "running"
    assert live.peek() == B and live.vm.has_pattern("drv0", 0x22)
    assert live.tags() == {"drv0": ("s1",), "drv1": ("s1",)}


@pytest.mark.parametrize("step, undone", [
    (3, ["live-external-snapshot", "domain-pause"]),                 # the memory
    (4, ["memory-save", "live-external-snapshot", "domain-pause"]),  # the unpause
])
def test_failed_external_create_commits_overlays_back_and_resumes(
        live: LiveDomain, step: int, undone: list[str]) -> None:
    cfg = live.root / "ext.cfg"
    cfg.write_text('name = "e1"\ntype = "external"\n')
    run = live.xlsnap("snapshot-create", "web", str(cfg), XLSNAP_FAULT_INJECT=f"fail:{step}:intent")
    assert run.code == 1, run.err
    assert [s[1] for s in live.steps() if s[0] == "undo"] == undone
    assert live.status() == "running"
    assert live.live_files() == {"drv0": str(live.disks[0]), "drv1": str(live.disks[1])}
    assert sorted(p.name for p in live.disks[0].parent.iterdir()) == ["disk0.qcow2",
                                                                       "disk1.qcow2"]
    assert list(live.home.rglob("*.save")) == []


def test_delete_removes_the_whole_vm_snapshot_through_qmp(live: LiveDomain) -> None:
    assert live.xlsnap("snapshot-create", "-n", "s1", "web").code == 0
    run = live.xlsnap("snapshot-delete", "-n", "s1", "web")
    assert run.code == 0, run.err
    assert [s[1] for s in live.steps()] == ["live-tag-delete", "live-tag-delete",
                                           "metadata-remove"]
    assert live.tags() == {"drv0": (), "drv1": ()}


def test_delete_removes_the_memory_image(live: LiveDomain) -> None:
    cfg = live.root / "mixed.cfg"
    cfg.write_text(f'name = "m1"\ndisk = [ "drv0={live.root}/x.qcow2", "drv1,type=internal" ]\n')
    assert live.xlsnap("snapshot-create", "web", str(cfg)).code == 0
    memory = live.home / live.record("m1")["domain"]["uuid"] / "m1.save"
    assert memory.exists()
    tops = live.live_files()
    assert live.tags()["drv1"] == ("m1",)
    run = live.xlsnap("snapshot-delete", "-n", "m1", "web")
    assert run.code == 0, run.err                       # merged and untagged while it runs
    assert not memory.exists()
    assert live.tags()["drv1"] == ()
    assert live.live_files() == {**tops, "drv0": str(live.disks[0])}
    assert live.xlsnap("check", "web").code == 0


def test_bad_input_is_refused_with_nothing_changed(live: LiveDomain) -> None:
    cfg = live.root / "c.cfg"
    cfg.write_text('memory = "yes"\n')
    for argv, fragment in [
        (["snapshot-create", "--disk-only", "-n", "x", "web", str(cfg)], "--disk-only"),
        (["--toolstack", "offline", "snapshot-create", "web"], "no config file"),
        (["snapshot-revert", "-n", "nosuch", "web"], "no snapshot named"),
    ]:
        run = live.xlsnap(*argv)
        assert run.code == 2, (argv, run.err)
        assert len(run.err.strip().splitlines()) == 1 and fragment in run.err, run.err
    usage = live.xlsnap("--toolstack", "bogus", "snapshot-create", "web")
    assert usage.code == 2 and "'bogus' is not one of auto, xen, qemu, offline" in usage.err
    assert live.tags() == {"drv0": (), "drv1": ()} and live.status() == "running"
    assert not any(live.home.rglob("*.save")) if live.home.exists() else True


def test_a_busy_qmp_socket_is_refused_with_nothing_changed(live: LiveDomain) -> None:
    """xlsnap holds a QEMU's socket for a whole command, so a second client waits for the
    greeting; when it does not come, the command says so (exit 3), not "unknown domain"."""
    assert live.xlsnap("snapshot-create", "-n", "s1", "web").code == 0
    before = len(live.events())
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as holder:
        holder.connect(str(live.socket))
        holder.recv(4096)                              # the greeting: this client is served
        run = live.xlsnap("snapshot-create", "-n", "s2", "web")
    assert run.code == 3, run.err
    assert len(run.err.strip().splitlines()) == 1 and "is busy" in run.err, run.err
    assert len(live.events()) == before
    assert live.tags() == {"drv0": ("s1",), "drv1": ("s1",)} and live.status() == "running"


def test_list_shows_state_and_disk_only(live: LiveDomain) -> None:
    assert live.xlsnap("snapshot-create", "-n", "s1", "web").code == 0
    assert live.xlsnap("snapshot-create", "--disk-only", "-n", "d1", "web").code == 0
    rows = json.loads(live.xlsnap("snapshot-list", "--json", "web").out)
    assert [(r["name"], r["state"], r["disk_only"]) for r in rows] == [
        ("s1", "running", False), ("d1", "running", True)]
