"""Snapshots of disks served the way libxl serves qcow2 disks: qdisk nodes, and for HVM the
same files also open as emulated IDE drives (tests.qemu_vm.libxl_argv).

The guest-visible content of every snapshot and of the current disk is read after the
device model has quit (``qemu-img convert -l snapshot.name=...``), so a snapshot taken
through the wrong node, or through two nodes of one file, shows here.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from commands.drivers.qmp import Qmp
from tests.conftest import REPO, read_pattern, tags
from tests.fakes.fake_xl_state import FakeDisk
from tests.xen.conftest import DOMID, NODES, UUID, XenHost

pytestmark = pytest.mark.slow


def snapshot_has(path: Path, tag: str, byte: int, length: int = 65536) -> bool:
    """True when the first ``length`` bytes of snapshot ``tag`` of ``path`` are ``byte``."""
    out = path.with_name(f"{path.name}.{tag}.raw")
    subprocess.run(["qemu-img", "convert", "-U", "-f", "qcow2", "-l", f"snapshot.name={tag}",
                    "-O", "raw", str(path), str(out)], check=True, capture_output=True,
                   timeout=60)
    try:
        with out.open("rb") as handle:
            return handle.read(length) == bytes([byte]) * length
    finally:
        out.unlink()


def quit_device_model(host: XenHost) -> None:
    """Let QEMU flush and exit, so that the images can be read as they are."""
    assert host.vm is not None
    host.vm.qmp().execute("quit")
    host.vm.process.wait(timeout=30)


def image_check_clean(path: Path) -> bool:
    return subprocess.run(["qemu-img", "check", "-q", str(path)], capture_output=True,
                          timeout=60).returncode == 0


def transaction_devices(host: XenHost) -> list[str]:
    step = next(s for s in host.steps() if s[1] == "live-internal-snapshot")
    return [a["data"]["device"] for a in json.loads(step[5])["actions"]]


def test_disk_only_snapshot_of_qdisk_disks_is_addressed_by_node_name(xen_host: XenHost) -> None:
    """The issue's command: it failed with "Cannot find device='/machine/peripheral-anon/
    device[0]/virtio-backend'" while disks were addressed by their QOM path."""
    assert xen_host.vm is not None
    xen_host.vm.qemu_io(NODES[0], "write -P 0x11 0 64k")
    run = xen_host.xlsnap("snapshot-create", "--disk-only", "-n", "d1", "web")
    assert run.code == 0, run.err
    assert transaction_devices(xen_host) == list(NODES)
    xen_host.vm.qemu_io(NODES[0], "write -P 0x22 0 64k")
    deleted = xen_host.xlsnap("snapshot-create", "--disk-only", "-n", "d2", "web")
    assert deleted.code == 0, deleted.err
    assert xen_host.xlsnap("snapshot-delete", "-n", "d1", "web").code == 0
    quit_device_model(xen_host)
    disk = xen_host.disks[0]
    assert tags(disk) == ["d2"] and tags(xen_host.disks[1]) == ["d2"]
    assert snapshot_has(disk, "d2", 0x22) and read_pattern(disk, 0x22)
    assert image_check_clean(disk) and image_check_clean(xen_host.disks[1])


def test_hvm_disks_are_snapshotted_through_the_qdisk_node_only(xen_hvm_host: XenHost) -> None:
    host = xen_hvm_host
    assert host.vm is not None
    opened = [d.qmp_id for d in host.vm.qmp().query_block()]
    assert "ide0-hd0" in opened and "ide0-hd1" in opened and set(NODES) <= set(opened)
    host.vm.qemu_io(NODES[0], "write -P 0x11 0 64k")
    assert (run := host.xlsnap("snapshot-create", "--disk-only", "-n", "d1", "web")).code == 0, \
        run.err
    assert transaction_devices(host) == list(NODES)
    disk_record = host.record("d1")["disks"][0]
    assert disk_record["qmp_device"] == "xvda-qcow2"
    assert "ide0-hd0" in disk_record["qmp_via"] and "qdisk" in disk_record["qmp_via"]
    host.vm.qemu_io(NODES[0], "write -P 0x22 0 64k")
    assert (run := host.xlsnap("snapshot-create", "-n", "m2", "web")).code == 0, run.err
    assert transaction_devices(host) == list(NODES)
    host.vm.qemu_io(NODES[0], "write -P 0x33 0 64k")
    assert (run := host.xlsnap("snapshot-delete", "-n", "d1", "web")).code == 0, run.err
    quit_device_model(host)
    disk = host.disks[0]
    assert tags(disk) == ["m2"] and tags(host.disks[1]) == ["m2"]
    assert snapshot_has(disk, "m2", 0x22) and read_pattern(disk, 0x33)
    assert image_check_clean(disk) and image_check_clean(host.disks[1])


def test_hvm_snapshots_survive_one_another(xen_hvm_host: XenHost) -> None:
    """Through both nodes of one file the first snapshot was lost on a real Xen; through
    one node every snapshot keeps its own content."""
    host = xen_hvm_host
    assert host.vm is not None
    for k, name in enumerate(("a", "b", "c")):
        host.vm.qemu_io(NODES[0], f"write -P {0x41 + k:#x} 0 64k")
        assert (run := host.xlsnap("snapshot-create", "--disk-only", "-n", name, "web")).code \
            == 0, run.err
    host.vm.qemu_io(NODES[0], "write -P 0x5a 0 64k")
    quit_device_model(host)
    disk = host.disks[0]
    assert tags(disk) == ["a", "b", "c"]
    assert [snapshot_has(disk, n, 0x41 + k) for k, n in enumerate("abc")] == [True] * 3
    assert read_pattern(disk, 0x5a) and image_check_clean(disk)


def device_model_quits(host: XenHost) -> None:
    """Quit the device model the fake xl started for the domain now, and wait for it."""
    dm = host.domain()["device_model"]
    Qmp(dm["qmp"]).execute("quit")
    wait_gone(dm["pid"])


def wait_gone(pid: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists() and b"qemu" in Path(f"/proc/{pid}/cmdline").read_bytes():
        assert time.monotonic() < deadline, f"process {pid} did not exit"
        time.sleep(0.05)


@pytest.mark.parametrize("hvm", [False, True], ids=["pv", "hvm"])
def test_revert_of_a_running_domain_touches_images_only_when_no_device_model_has_them(
        tmp_path: Path, hvm: bool, request: pytest.FixtureRequest) -> None:
    """xl destroy does not wait for the device model; the restored one has the images
    open: qemu-img must run in between only, and the safety tags go through QMP."""
    host: XenHost = request.getfixturevalue("xen_hvm_host" if hvm else "xen_host")
    assert host.vm is not None
    host.vm.qemu_io(NODES[0], "write -P 0x11 0 64k")
    assert (run := host.xlsnap("snapshot-create", "-n", "s1", "web")).code == 0, run.err
    token = host.domain()["memory_image"]
    host.vm.qemu_io(NODES[0], "write -P 0x22 0 64k")
    host.fake.set_memory("web", "changed-after-s1")
    run = host.xlsnap("snapshot-revert", "-n", "s1", "web")
    assert run.code == 0, run.err
    dom = host.domain()
    assert dom["domid"] != DOMID and dom["memory_image"] == token
    assert dom["state"] == "running"
    restored = {d.node_name: d.snapshots for d in Qmp(dom["device_model"]["qmp"]).query_block()}
    assert restored["xvda-qcow2"] == ("s1",) and restored["xvdb-qcow2"] == ("s1",)
    device_model_quits(host)
    for disk in host.disks:
        assert tags(disk) == ["s1"] and image_check_clean(disk)
    assert read_pattern(host.disks[0], 0x11) and snapshot_has(host.disks[0], "s1", 0x11)


def test_a_device_model_that_does_not_exit_stops_the_revert_before_any_image_is_touched(
        xen_host: XenHost) -> None:
    host = xen_host
    assert host.vm is not None
    host.vm.qemu_io(NODES[0], "write -P 0x11 0 64k")
    assert host.xlsnap("snapshot-create", "-n", "s1", "web").code == 0
    host.vm.qemu_io(NODES[0], "write -P 0x22 0 64k")
    host.fake.set_memory("web", "changed-after-s1")
    run = host.xlsnap("snapshot-revert", "-n", "s1", "web", XLSNAP_FAKE_XL_DM_EXIT_DELAY="4",
                      XLSNAP_DM_EXIT_TIMEOUT="1")
    assert run.code != 0
    assert f"(pid {host.vm.process.pid}) did not exit within 1s after 'xl destroy'" in run.err
    assert [s[1] for s in host.steps() if s[0] == "do"] == ["memory-save", "domain-destroy"]
    wait_gone(host.vm.process.pid)  # it exits in the end (SIGHUP): recover brings it back
    recovered = host.xlsnap("recover", "web")
    assert recovered.code == 0, recovered.err
    dom = host.domain()
    assert dom["memory_image"] == "changed-after-s1" and dom["state"] == "running"
    device_model_quits(host)
    for disk in host.disks:
        assert tags(disk) == ["s1"] and image_check_clean(disk)
    assert read_pattern(host.disks[0], 0x22) and snapshot_has(host.disks[0], "s1", 0x11)


def test_xlsnap_waits_for_libxl_s_qmp_lock(xen_host: XenHost) -> None:
    """While another process (xl, libvirt) holds libxl's lock on the device model's QMP
    socket, xlsnap sends nothing; it goes on once the lock is free."""
    host = xen_host
    lock = host.lib_dir / f"userdata-l.{DOMID}.{UUID}.qmp-socket-lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, sys\n"
         f"f = open({str(lock)!r}, 'a'); fcntl.flock(f, fcntl.LOCK_EX)\n"
         "print('held', flush=True); sys.stdin.readline()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        proc = subprocess.Popen([sys.executable, "-m", "commands", "snapshot-create",
                                 "--disk-only", "-n", "d1", "web"], cwd=REPO, env=host.env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(3)
            assert proc.poll() is None, proc.communicate()
            assert qmp_tags(host) == {"xvda-qcow2": (), "xvdb-qcow2": ()}
        finally:
            assert holder.stdin is not None
            holder.stdin.write("\n")
            holder.stdin.flush()
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    finally:
        holder.kill()
        holder.wait()
    assert qmp_tags(host) == {"xvda-qcow2": ("d1",), "xvdb-qcow2": ("d1",)}


def qmp_tags(host: XenHost) -> dict[str, tuple[str, ...]]:
    assert host.vm is not None
    return {d.node_name: d.snapshots for d in host.vm.qmp().query_block()
            if d.node_name in NODES}


def test_a_slow_xl_save_is_not_killed_by_the_tool_timeout(xen_host: XenHost) -> None:
    """xl save of a large guest takes minutes; XLSNAP_TOOL_TIMEOUT is qemu-img's."""
    run = xen_host.xlsnap("snapshot-create", "-n", "m1", "web", XLSNAP_TOOL_TIMEOUT="1",
                          XLSNAP_FAKE_XL_HANG="save", XLSNAP_FAKE_XL_HANG_SECONDS="3")
    assert run.code == 0, run.err
    dom = xen_host.domain()
    assert dom["state"] == "running" and dom.get("pause_count", 0) == 0
    assert qmp_tags(xen_host) == {"xvda-qcow2": ("m1",), "xvdb-qcow2": ("m1",)}
    assert (xen_host.domain_dir / "m1.save").read_bytes().startswith(b"Xen saved domain")


def test_a_save_that_leaves_the_domain_running_takes_no_disk_snapshot(xen_host: XenHost) -> None:
    """xl save -p exits 0 when its final pause failed: the domain runs on, so snapshotting
    its disks would not match the memory image."""
    run = xen_host.xlsnap("snapshot-create", "-n", "m1", "web", XLSNAP_FAKE_XL_FAIL="save-pause")
    assert run.code == 1 and "not paused" in run.err and "nothing changed" in run.err, run.err
    assert xen_host.domain()["state"] == "running"
    assert qmp_tags(xen_host) == {"xvda-qcow2": (), "xvdb-qcow2": ()}
    assert list(xen_host.home.rglob("*.save")) == []


@pytest.mark.parametrize("disk, why", [
    (FakeDisk("/images/db.raw", "xvdb", format="raw"),
     "disk 'xvdb' (/images/db.raw): libxl serves it with the kernel's blkback (backend phy, "
     "raw format), not QEMU"),
    (FakeDisk("/dev/vg/db", "xvdb", format="raw", script="block-drbd"),
     "(backend phy, script block-drbd)"),
    (FakeDisk("/images/db.qcow2", "xvdb", backend_domid=3),
     "it is served from driver domain 3"),
    (FakeDisk("/images/db.raw", "xvdb", format="raw", backend="qdisk"),
     "QEMU has no internal snapshots of raw images"),
])
def test_disks_libxl_does_not_serve_through_qemu_are_refused_by_name(
        xen_host: XenHost, disk: FakeDisk, why: str) -> None:
    """A phy disk never appears in QEMU (a PV domain with only such disks has none)."""
    xen_host.fake.add_domain("db", domid=9, type="pv", disks=[disk])
    before = xen_host.fake.calls()
    run = xen_host.xlsnap("snapshot-create", "--disk-only", "-n", "d1", "db")
    assert run.code == 2 and why in run.err, run.err
    assert "cannot be snapshotted while it runs" in run.err
    assert len(run.err.strip().splitlines()) == 1
    assert [c for c in xen_host.fake.calls()[len(before):] if c[0] != "list"] == []


def test_a_stub_domain_device_model_is_refused_by_name(xen_host: XenHost) -> None:
    xen_host.fake.add_domain("db", domid=9, disks=[FakeDisk("/images/db.qcow2", "hda")],
                             b_info={"device_model_stubdomain_override": "True"})
    run = xen_host.xlsnap("snapshot-create", "--disk-only", "-n", "d1", "db")
    assert run.code == 2 and "runs in a stub domain" in run.err, run.err


def test_a_read_only_phy_disk_is_left_out_and_the_qdisk_ones_are_taken(
        xen_host: XenHost) -> None:
    xen_host.fake.add_domain("db", domid=9, disks=[
        FakeDisk(str(xen_host.disks[0]), "xvda"),
        FakeDisk("/images/iso.raw", "xvdc", format="raw", access="ro")])
    xen_host.link_device_model(9)
    run = xen_host.xlsnap("snapshot-create", "--disk-only", "-n", "d1", "db")
    assert run.code == 0, run.err
    assert [d["device"] for d in xen_host.record_of("db", "d1")["disks"]] == ["xvda"]


def test_memory_snapshot_of_a_paused_pv_domain_is_refused_up_front(xen_host: XenHost) -> None:
    """A paused PV guest cannot acknowledge the suspend request: libxl would wait 60 s
    ("guest didn't acknowledge suspend") and fail."""
    subprocess.run([xen_host.fake.binary, "pause", "web"], env=xen_host.env(), check=True)
    before = len(xen_host.calls())
    run = xen_host.xlsnap("snapshot-create", "-n", "m1", "web")
    assert run.code == 2 and "paused PV guest" in run.err and "--disk-only" in run.err
    assert [c[0] for c in xen_host.calls()[before:] if c[0] not in ("list",)] == []
    assert xen_host.events() == []
    disk_only = xen_host.xlsnap("snapshot-create", "--disk-only", "-n", "d1", "web")
    assert disk_only.code == 0, disk_only.err
    assert xen_host.domain()["state"] == "paused"


@pytest.mark.parametrize("toolstack", ["xen", "auto"])
def test_a_user_who_is_not_root_is_told_root_is_needed(xen_host: XenHost,
                                                       toolstack: str) -> None:
    (xen_host.config_dir / "web.cfg").write_text(
        f'name = "web"\nuuid = "{UUID}"\ndisk = [ "{xen_host.disks[0]},qcow2,xvda,rw" ]\n')
    run = xen_host.xlsnap("snapshot-create", "-n", "s1", "web", XLSNAP_FAKE_XL_NOT_ROOT="1",
                          XLSNAP_TOOLSTACK=toolstack)
    assert run.code == 2, run.err
    assert run.err.strip().splitlines() == [
        "xlsnap: error: xl needs root: it could not open Xen's privileged command interface "
        "(Permission denied); run xlsnap as root"]
    assert not xen_host.home.exists()
    assert tags(xen_host.disks[0]) == []


@pytest.mark.parametrize("option, state", [(None, "running"), ("--paused", "paused")])
def test_revert_of_a_domain_snapshot_of_a_stopped_domain_restores_it(
        xen_host: XenHost, option: str | None, state: str) -> None:
    """Disks back to the snapshot, then xl restore of its memory image (as libvirt does)."""
    host = xen_host
    assert host.vm is not None
    (host.config_dir / "web.cfg").write_text(
        f'name = "web"\nuuid = "{UUID}"\ndisk = [ "{host.disks[0]},qcow2,xvda,rw", '
        f'"{host.disks[1]},qcow2,xvdb,rw" ]\n')
    host.vm.qemu_io(NODES[0], "write -P 0x11 0 64k")
    assert host.xlsnap("snapshot-create", "-n", "s1", "web").code == 0
    token = host.domain()["memory_image"]
    subprocess.run([host.fake.binary, "destroy", "web"], env=host.env(), check=True)
    wait_gone(host.vm.process.pid)
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x33 0 64k", str(host.disks[0])],
                   check=True, capture_output=True)
    run = host.xlsnap("snapshot-revert", *([option] if option else []), "-n", "s1", "web",
                      XLSNAP_TOOLSTACK="auto")
    assert run.code == 0, run.err
    dom = host.domain()
    assert dom["memory_image"] == token and dom["state"] == state and dom["domid"] != DOMID
    restored = {d.node_name: d.snapshots for d in Qmp(dom["device_model"]["qmp"]).query_block()}
    assert restored["xvda-qcow2"] == ("s1",) and restored["xvdb-qcow2"] == ("s1",)
    device_model_quits(host)
    for disk in host.disks:
        assert tags(disk) == ["s1"] and image_check_clean(disk)
    assert read_pattern(host.disks[0], 0x11)


def test_qemu_img_never_writes_an_image_a_device_model_has_open(xen_host: XenHost) -> None:
    """qdisk opens images with locking off, so qemu-img alone would write them while the
    domain runs (here: --toolstack offline on a running domain's config)."""
    host = xen_host
    assert host.vm is not None
    (host.config_dir / "web.cfg").write_text(
        f'name = "web"\nuuid = "{UUID}"\ndisk = [ "{host.disks[0]},qcow2,xvda,rw" ]\n')
    host.vm.qemu_io(NODES[0], "write -P 0x11 0 64k")
    run = host.xlsnap("snapshot-create", "-n", "o1", "web", XLSNAP_TOOLSTACK="offline")
    assert run.code == 1 and f"another process (pid {host.vm.process.pid})" in run.err, run.err
    assert "nothing changed" in run.err
    quit_device_model(host)
    assert tags(host.disks[0]) == [] and image_check_clean(host.disks[0])
    assert read_pattern(host.disks[0], 0x11)


def test_a_domain_with_a_cdrom_is_snapshotted_through_its_disks(xen_host: XenHost) -> None:
    """An empty or ISO cdrom is in xl's disk list but never in a snapshot (read-only)."""
    xen_host.fake.add_domain("db", domid=9, disks=[
        FakeDisk("", "hdc", format="raw", access="ro", cdrom=True),
        FakeDisk(str(xen_host.disks[0]), "xvda")])
    xen_host.link_device_model(9)
    run = xen_host.xlsnap("snapshot-create", "--disk-only", "-n", "d1", "db")
    assert run.code == 0, run.err
    assert [d["device"] for d in xen_host.record_of("db", "d1")["disks"]] == ["xvda"]
