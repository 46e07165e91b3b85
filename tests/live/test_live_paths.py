"""A running QEMU's snapshot files: a memory image in a folder xlsnap did not create, and
overlays that QEMU creates, which get their base image's mode and owner."""

from __future__ import annotations

import os
import stat

import pytest

from tests.live.conftest import LiveDomain

pytestmark = pytest.mark.slow
NOBODY = 65534
DAEMON_GID = 1


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_memory_image_in_a_sticky_shared_folder_leaves_the_folder_as_it_was(
        live: LiveDomain) -> None:
    shared = live.root / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    memory = shared / "m.save"
    cfg = live.root / "m.cfg"
    cfg.write_text(f'name = "m1"\ntype = "external"\nmemory = "{memory}"\n')
    live.write("drv0", 0x11)
    run = live.xlsnap("snapshot-create", "web", str(cfg))
    assert run.code == 0, run.err
    assert mode(shared) == 0o1777
    assert mode(memory) == 0o600 and memory.read_bytes()[:4] == b"QEVM"
    assert live.record("m1")["memory_file"] == str(memory)
    live.write("drv0", 0x22)
    live.stop_qemu()
    assert live.disk_has(live.disks[0], 0x11)
    assert live.disk_has(live.disks[0].with_name("disk0.m1.qcow2"), 0x22)


def test_a_memory_folder_others_may_write_is_refused_naming_its_mode_and_kept(
        live: LiveDomain) -> None:
    group = live.root / "group"
    group.mkdir()
    os.chown(group, 0, DAEMON_GID)
    os.chmod(group, 0o2775)
    cfg = live.root / "m.cfg"
    cfg.write_text(f'name = "m1"\ntype = "external"\nmemory = "{group}/m.save"\n')
    files = live.live_files()
    run = live.xlsnap("snapshot-create", "web", str(cfg))
    assert run.code == 2, run.err
    assert len(run.err.splitlines()) == 1
    assert f"unsafe folder of memory image {group} (mode 2775" in run.err
    assert mode(group) == 0o2775 and os.stat(group).st_gid == DAEMON_GID
    assert list(group.iterdir()) == [] and live.live_files() == files
    assert live.status() == "running"


def test_live_overlays_get_their_base_images_mode_and_owner(live: LiveDomain) -> None:
    a, b = live.disks
    os.chmod(a, 0o600)
    os.chown(b, NOBODY, DAEMON_GID)
    os.chmod(b, 0o640)
    live.write("drv0", 0x11)
    live.write("drv1", 0x12)
    cfg = live.root / "e.cfg"
    cfg.write_text('name = "e1"\ntype = "external"\nmemory = "no"\n')
    run = live.xlsnap("snapshot-create", "web", str(cfg))
    assert run.code == 0, run.err
    a1, b1 = a.with_name("disk0.e1.qcow2"), b.with_name("disk1.e1.qcow2")
    assert live.live_files() == {"drv0": str(a1), "drv1": str(b1)}
    assert mode(a1) == 0o600 and os.stat(a1).st_uid == 0
    assert mode(b1) == 0o640 and (os.stat(b1).st_uid, os.stat(b1).st_gid) == (NOBODY,
                                                                             DAEMON_GID)
    live.write("drv0", 0x21)
    live.write("drv1", 0x22)
    live.stop_qemu()
    assert live.disk_has(a, 0x11) and live.disk_has(b, 0x12)
    assert live.disk_has(a1, 0x21) and live.disk_has(b1, 0x22)
