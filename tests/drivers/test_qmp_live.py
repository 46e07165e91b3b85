"""The QMP driver against a real QEMU 7.2 (TCG, no OS): disks, jobs, memory, errors."""

from __future__ import annotations

import logging
import os
import socket
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from commands.drivers.qmp import (
    Overlay,
    Qmp,
    QmpBusy,
    QmpChannel,
    QmpError,
    QmpJobFailed,
    QmpUnavailable,
    UnsafePath,
)
from tests.qemu_vm import GUEST_RAM, QemuVm, requires_qemu, start_vm

pytestmark = [pytest.mark.slow, requires_qemu]
VmFactory = Callable[..., QemuVm]
LOADER_ADDR = 0x2000000          # 32 MiB: guest RAM that the firmware leaves alone


def test_internal_snapshot_of_two_disks_in_one_transaction(qemu_vms: VmFactory) -> None:
    vm = qemu_vms(disks=2)
    qmp = vm.qmp()
    qmp.snapshot_internal(["drv0", "disk1"], "s1")     # device names or node names
    assert {d.device: d.snapshots for d in qmp.query_block()} == {"drv0": ("s1",),
                                                                  "drv1": ("s1",)}
    assert qmp.log[0] == {"execute": "transaction", "arguments": {"actions": [
        {"type": "blockdev-snapshot-internal-sync", "data": {"device": "drv0", "name": "s1"}},
        {"type": "blockdev-snapshot-internal-sync", "data": {"device": "disk1", "name": "s1"}},
    ]}, "ok": True, "duration_ms": qmp.log[0]["duration_ms"]}


def test_transaction_is_all_or_nothing(qemu_vms: VmFactory) -> None:
    vm = qemu_vms(disks=2)
    qmp = vm.qmp()
    qmp.snapshot_internal(["drv1"], "s1")
    with pytest.raises(QmpError, match="Snapshot with name 's1' already exists on device "
                                       "'drv1'") as caught:
        qmp.snapshot_internal(["drv0", "drv1"], "s1")
    assert caught.value.error_class == "GenericError"
    assert caught.value.command == "transaction"
    assert {d.device: d.snapshots for d in qmp.query_block()} == {"drv0": (), "drv1": ("s1",)}


def test_raw_disks_refuse_internal_snapshots(qemu_vms: VmFactory, tmp_path: Path) -> None:
    raw = tmp_path / "plain.raw"
    raw.write_bytes(b"\0" * (1 << 20))
    qmp = qemu_vms(disks=[raw]).qmp()
    with pytest.raises(QmpError, match="Block format 'raw' used by device 'drv0' does not "
                                       "support internal snapshots"):
        qmp.snapshot_internal(["drv0"], "s1")


def test_snapshot_save_silently_skips_disks_not_listed(qemu_vms: VmFactory) -> None:
    qmp = qemu_vms(disks=2).qmp()
    qmp.snapshot_save("half", "disk0", ["disk0"])
    assert {d.device: d.snapshots for d in qmp.query_block()} == {"drv0": ("half",),
                                                                  "drv1": ()}
    with pytest.raises(QmpJobFailed, match="No block device node 'drv0'"):
        qmp.snapshot_save("ids", "drv0", ["drv0"])     # jobs take node names only


def test_unknown_device_is_a_typed_error(qemu_vms: VmFactory) -> None:
    qmp = qemu_vms(disks=1).qmp()
    with pytest.raises(QmpError, match="Cannot find device='nosuch' nor node-name='nosuch'"):
        qmp.snapshot_internal(["nosuch"], "s1")
    with pytest.raises(QmpError, match="Cannot find device='nosuch'"):
        qmp.delete_internal("nosuch", "s1")
    assert [e["ok"] for e in qmp.log] == [False, False]
    assert qmp.log[1]["desc"] == "Cannot find device='nosuch' nor node-name='nosuch'"


def test_delete_internal_snapshot(qemu_vms: VmFactory) -> None:
    qmp = qemu_vms(disks=1).qmp()
    qmp.snapshot_internal(["drv0"], "s1")
    deleted = qmp.delete_internal("drv0", "s1")
    assert deleted["name"] == "s1"
    assert qmp.query_block()[0].snapshots == ()
    with pytest.raises(QmpError, match="'s1' does not exist on device 'drv0'"):
        qmp.delete_internal("drv0", "s1")


def test_snapshot_load_restores_disk_content(qemu_vms: VmFactory) -> None:
    vm = qemu_vms(disks=2)
    qmp = vm.qmp()
    qmp.snapshot_save("clean", "disk0", ["disk0", "disk1"])
    vm.qemu_io("drv0", "write -P 0x5a 0 64k")
    assert vm.has_pattern("drv0", 0x5A) and not vm.has_pattern("drv0", 0x00)
    qmp.snapshot_load("clean", "disk0", ["disk0", "disk1"])
    assert vm.has_pattern("drv0", 0x00) and not vm.has_pattern("drv0", 0x5A)
    assert qmp.query_status().status == "running"
    assert [e["execute"] for e in qmp.log] == [
        "snapshot-save", "query-jobs", "job-dismiss",
        "query-block", "snapshot-load", "query-jobs", "job-dismiss", "query-status"]
    assert qmp.execute("query-jobs") == []


def test_save_again_then_load_brings_back_the_later_content(qemu_vms: VmFactory) -> None:
    vm = qemu_vms(disks=1)
    qmp = vm.qmp()
    vm.qemu_io("drv0", "write -P 0x5a 0 64k")
    qmp.snapshot_save("written", "disk0", ["disk0"])
    vm.qemu_io("drv0", "write -P 0x11 0 64k")
    qmp.snapshot_load("written", "disk0", ["disk0"])
    assert vm.has_pattern("drv0", 0x5A)


def test_snapshot_save_job_errors_are_typed_and_dismissed(qemu_vms: VmFactory) -> None:
    qmp = qemu_vms(disks=2).qmp()
    qmp.snapshot_save("t", "disk0", ["disk0", "disk1"])
    with pytest.raises(QmpJobFailed, match="Snapshot 't' already exists in one or more "
                                           "devices") as caught:
        qmp.snapshot_save("t", "disk0", ["disk0", "disk1"])
    assert caught.value.command == "snapshot-save"
    assert qmp.log[-3]["job"] == {"status": "concluded",
                                  "error": "Snapshot 't' already exists in one or more devices"}
    with pytest.raises(QmpJobFailed, match="vmstate block device 'disk0' does not exist"):
        qmp.snapshot_save("u", "disk0", ["disk1"])       # vmstate must be among devices
    assert qmp.execute("query-jobs") == []


def test_failed_snapshot_load_leaves_the_vm_stopped(qemu_vms: VmFactory) -> None:
    qmp = qemu_vms(disks=1).qmp()
    with pytest.raises(QmpJobFailed, match="Snapshot 'nosuch' does not exist"):
        qmp.snapshot_load("nosuch", "disk0", ["disk0"])
    assert qmp.query_status().status == "restore-vm"
    qmp.cont()
    assert qmp.query_status().running


def test_snapshot_delete_of_a_missing_tag_succeeds(qemu_vms: VmFactory) -> None:
    qmp = qemu_vms(disks=1).qmp()
    qmp.snapshot_save("t", "disk0", ["disk0"])
    qmp.snapshot_delete("t", ["disk0"])
    qmp.snapshot_delete("t", ["disk0"])
    assert qmp.query_block()[0].snapshots == ()


def test_memory_to_a_file_and_back_through_incoming_defer(qemu_vms: VmFactory,
                                                           tmp_path: Path) -> None:
    blob = os.urandom(65536)
    (tmp_path / "blob.bin").write_bytes(blob)
    src = qemu_vms(disks=1, name="src", extra=[
        "-device", f"loader,file={tmp_path / 'blob.bin'},addr={LOADER_ADDR:#x},force-raw=on"])
    qmp = src.qmp()
    qmp.stop()
    ram = src.pmemsave(tmp_path / "src.ram")
    image = tmp_path / "mem.save"
    done = qmp.migrate_to_file(str(image))
    assert done.status == "completed" and done.transferred
    assert qmp.query_status().status == "postmigrate"
    assert stat.S_IMODE(image.stat().st_mode) == 0o600
    assert image.read_bytes()[:4] == b"QEVM"
    # the driver waits for QEMU to leave finish-migrate: until then cont is refused
    assert [e["execute"] for e in qmp.log] == ["stop", "getfd", "migrate", "query-migrate",
                                               "query-status", "query-status"]
    assert qmp.log[4].get("poll") and not qmp.log[5].get("poll")
    assert qmp.log[1]["arguments"] == {"fdname": "xlsnap-migration"}
    assert qmp.log[2]["arguments"] == {"uri": "fd:xlsnap-migration"}
    src.kill()                                   # as after a crash: its disks are free

    dst = qemu_vms(disks=src.disks, name="dst", incoming=True)
    assert dst.pmemsave(tmp_path / "before.ram", LOADER_ADDR, len(blob)) != blob
    back = dst.qmp().migrate_incoming(str(image))
    assert back.status == "completed"
    assert dst.qmp().query_status().status == "paused"
    assert len(ram) == GUEST_RAM
    assert dst.pmemsave(tmp_path / "dst.ram") == ram
    assert ram[LOADER_ADDR:LOADER_ADDR + len(blob)] == blob


def test_migrate_incoming_needs_incoming_defer(qemu_vms: VmFactory, tmp_path: Path) -> None:
    image = tmp_path / "mem.save"
    image.write_bytes(b"QEVM")
    with pytest.raises(QmpError, match="'-incoming' was not specified on the command line"):
        qemu_vms(disks=1).qmp().migrate_incoming(str(image))


def test_external_overlay_becomes_the_live_disk(qemu_vms: VmFactory, tmp_path: Path) -> None:
    vm = qemu_vms(disks=2)
    qmp = vm.qmp()
    overlay = tmp_path / "disk0.overlay.qcow2"
    qmp.snapshot_external([Overlay("disk0", str(overlay), "disk0-top")])
    drv0, drv1 = qmp.query_block()
    assert (drv0.device, drv0.node_name, drv0.filename) == ("drv0", "disk0-top", str(overlay))
    assert drv0.backing_file == str(vm.disks[0]) and drv0.format == "qcow2"
    assert drv1.filename == str(vm.disks[1]) and drv1.backing_file is None
    vm.qemu_io("drv0", "write -P 0x77 0 64k")
    assert vm.has_pattern("drv0", 0x77)
    assert overlay.stat().st_size > 0


def test_a_busy_socket_is_unavailable(qemu_vms: VmFactory) -> None:
    vm = qemu_vms(disks=1)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as holder:
        holder.connect(str(vm.qmp_path))
        holder.recv(4096)                         # the greeting: QEMU serves this client
        with pytest.raises(QmpBusy, match="no QMP greeting .* within 0.3s"):
            vm.qmp(connect_timeout=0.3).query_status()
    assert vm.qmp().query_status().running       # free again once the holder left


def test_relative_paths_are_refused_before_anything_is_sent(qemu_vms: VmFactory,
                                                            tmp_path: Path) -> None:
    qmp = qemu_vms(disks=1).qmp()
    for bad in ("relative/mem.save", "mem.save"):
        with pytest.raises(UnsafePath, match="must be absolute"):
            qmp.migrate_to_file(bad)
    assert qmp.log == []


def test_a_memory_image_path_is_never_shell_text(qemu_vms: VmFactory, tmp_path: Path) -> None:
    """The file is opened by us and passed to QEMU: quotes, spaces and ``$(...)`` are
    just characters of a file name."""
    vm = qemu_vms(disks=1)
    qmp = vm.qmp()
    qmp.stop()
    odd = tmp_path / "a b;$(touch pwned)'\"x.save"
    done = qmp.migrate_to_file(str(odd))
    assert done.status == "completed"
    assert odd.read_bytes()[:4] == b"QEVM"
    assert sorted(p.name for p in tmp_path.iterdir() if "pwned" in p.name) == [odd.name]
    assert not (Path.cwd() / "pwned").exists()
    with pytest.raises(FileExistsError):              # never overwritten
        qmp.migrate_to_file(str(odd))


def test_a_refused_migration_leaves_no_file_and_no_descriptor(qemu_vms: VmFactory,
                                                             tmp_path: Path) -> None:
    vm = qemu_vms(disks=1, incoming=True)             # it cannot migrate out
    qmp = vm.qmp()
    image = tmp_path / "mem.save"
    with pytest.raises(QmpError, match="incoming migration"):
        qmp.migrate_to_file(str(image))
    assert not image.exists()
    fds = Path(f"/proc/{vm.process.pid}/fd")
    assert not [f for f in fds.iterdir() if "mem.save" in os.readlink(f)]   # closefd'd
    assert [e["execute"] for e in qmp.log][-2:] == ["migrate", "closefd"]


def test_quit_hangs_up_cleanly_and_memsave_reads_virtual_memory(qemu_vms: VmFactory,
                                                               tmp_path: Path) -> None:
    vm = qemu_vms(disks=1)
    assert len(vm.memsave(tmp_path / "low.bin", 0, 4096)) == 4096
    qmp = vm.qmp()
    assert qmp.execute("quit") == {}             # QEMU closes the socket: no error for us
    assert vm.process.wait(timeout=10) == 0
    with pytest.raises(QmpUnavailable):
        qmp.query_status()


def test_a_held_channel_serves_every_call_on_one_connection(qemu_vms: VmFactory) -> None:
    vm = qemu_vms(disks=1)
    channel = QmpChannel(str(vm.qmp_path))
    channel.hold()
    first, second = (Qmp(str(vm.qmp_path), channel=channel) for _ in range(2))
    assert first.query_status().running
    with pytest.raises(QmpError, match="does not exist"):  # QEMU refused: still connected
        second.delete_internal("drv0", "no-such-tag")
    first.stop()
    assert not second.query_status().running
    assert channel.connects == 1
    assert [e["execute"] for e in first.log] == ["query-status", "stop"]   # a log each
    with pytest.raises(QmpUnavailable, match="no QMP greeting"):  # held: others must wait
        vm.qmp(connect_timeout=0.3).query_status()
    channel.close()
    assert vm.qmp().query_status().status == "paused"  # free again once closed


def test_an_unheld_channel_connects_for_each_call(qemu_vms: VmFactory) -> None:
    vm = qemu_vms(disks=1)
    qmp = vm.qmp()
    qmp.query_status()
    qmp.query_block()
    assert qmp.channel.connects == 2
    assert vm.qmp(connect_timeout=1).query_status().running  # nothing left connected


def test_a_held_channel_reconnects_after_quit_to_the_next_qemu(qemu_vms: VmFactory) -> None:
    vm = qemu_vms(disks=1, name="a")
    channel = QmpChannel(str(vm.qmp_path))
    channel.hold()
    qmp = Qmp(str(vm.qmp_path), channel=channel)
    qmp.query_status()
    qmp.execute("quit")
    assert vm.process.wait(timeout=10) == 0
    vm.qmp_path.unlink(missing_ok=True)
    again = qemu_vms(disks=1, name="a")              # a new QEMU on the same socket path
    assert again.qmp_path == vm.qmp_path
    assert qmp.query_status().running and channel.connects == 2
    channel.close()


def test_start_vm_kills_qemu_even_when_the_block_fails(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with start_vm(tmp_path, 1) as vm:
            raise RuntimeError("boom")
    assert vm.process.poll() is not None


def test_undoing_an_overlay_carries_on_a_commit_job_left_by_an_earlier_try(
        qemu_vms: VmFactory, tmp_path: Path) -> None:
    """xlsnap killed while committing an overlay back leaves its job in QEMU (it is not
    auto-dismissed); the next try (``recover``) must finish that job, not start another,
    which QEMU would refuse ("Need a root block node")."""
    from commands.engine.actions import Tools
    from commands.engine.actions_qmp import LiveExternalSnapshot
    from commands.drivers.qemu_img import QemuImg

    vm = qemu_vms(disks=1)
    qmp = vm.qmp()
    overlay = tmp_path / "disk0.s1.qcow2"
    qmp.snapshot_external([Overlay("disk0", str(overlay), "top")])
    vm.qemu_io("drv0", "write -P 0x5a 0 64k")
    qmp.execute("block-commit", {"device": "drv0", "job-id": "xlsnap-commit-drv0",
                                 "auto-dismiss": False})      # the killed try's job
    with pytest.raises(QmpError, match="Need a root block node"):
        qmp.execute("block-commit", {"device": "drv0", "job-id": "other"})
    params = {"socket": str(vm.qmp_path), "tag": "s1", "external": [
        {"device": "drv0", "node": "disk0", "overlay": str(overlay), "snapshot_node": "top"}]}
    tools = Tools(qemu_img=QemuImg("qemu-img", 30.0), qmp=Qmp)
    result = LiveExternalSnapshot().undo(params, tools)
    assert result.detail["committed"] == ["drv0"]
    assert [d.filename for d in qmp.query_block()] == [str(vm.disks[0])]
    assert not overlay.exists() and qmp.execute("query-jobs") == []
    assert vm.has_pattern("drv0", 0x5a)                  # the overlay's writes were kept


def test_messages_are_formatted_only_when_debug_logging_wants_them(
        qemu_vms: VmFactory, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """qemu.qmp pretty-prints every message for a debug log line, wanted or not: with
    many snapshots a query-block costs milliseconds. Ours formats only for a debug log."""
    from qemu.qmp.message import Message

    formatted: list[int] = []
    original = Message.__str__
    monkeypatch.setattr(Message, "__str__", lambda m: formatted.append(1) or original(m))
    qmp = qemu_vms(disks=2).qmp()
    caplog.set_level(logging.INFO, logger="qemu.qmp")
    assert len(qmp.query_block()) == 2
    assert formatted == []
    caplog.set_level(logging.DEBUG, logger="qemu.qmp")
    qmp.query_block()
    assert formatted and any('"execute": "query-block"' in r.getMessage()
                             for r in caplog.records)


def test_a_qemu_that_stops_answering_is_not_called_busy(qemu_vms: VmFactory,
                                                        tmp_path: Path) -> None:
    """Only a missing greeting means another client holds the socket (exit 3, "busy");
    a QEMU that greeted us and then hangs does not answer (the domain is not reached)."""
    import signal

    from commands.errors import ResourceBusy
    from commands.toolstacks.base import NotReached
    from commands.toolstacks.qemu import QemuToolstack

    vm = qemu_vms(disks=1, name="web")
    channel = QmpChannel(str(vm.qmp_path))
    stack = QemuToolstack(vm.qmp_path.parent, tmp_path,
                          lambda p: Qmp(p, command_timeout=0.5, channel=channel))
    assert stack.resolve("web").live is not None      # connected and held
    os.kill(vm.process.pid, signal.SIGSTOP)
    try:
        with pytest.raises(NotReached, match="does not answer: query-status: no reply"):
            stack.resolve("web")
        fresh = QemuToolstack(vm.qmp_path.parent, tmp_path,
                              lambda p: Qmp(p, connect_timeout=0.3))
        with pytest.raises(ResourceBusy, match="is busy"):
            fresh.resolve("web")                        # no greeting at all
    finally:
        os.kill(vm.process.pid, signal.SIGCONT)
        channel.close()
