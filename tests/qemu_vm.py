"""Start a real ``qemu-system-x86_64`` (TCG, 64 MiB, no OS) for live-snapshot tests.

The guest sits in firmware, which is enough for QMP: disks, jobs, migration, memory.
Only a UNIX-socket QMP monitor, no network. QEMU is always killed at teardown (and
dies with the test process, through PR_SET_PDEATHSIG, if pytest itself is killed).

    with start_vm(tmp_path, disks=2) as vm:
        vm.qmp().snapshot_internal(["drv0", "drv1"], "s1")
        assert vm.qemu_io("drv0", "read -P 0 0 64k")
"""

from __future__ import annotations

import ctypes
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from commands.drivers.qmp import Qmp

QEMU = "qemu-system-x86_64"
GUEST_RAM = 64 * 1024 * 1024
requires_qemu = pytest.mark.skipif(shutil.which(QEMU) is None or shutil.which("qemu-img") is None,
                                   reason=f"{QEMU} or qemu-img is not installed")
_PR_SET_PDEATHSIG = 1


@dataclass
class QemuVm:
    """A running QEMU: its process, QMP socket, disks (drvK / node diskK) and output log."""

    process: subprocess.Popen[bytes]
    qmp_path: Path
    disks: list[Path]
    log_path: Path
    argv: list[str] = field(default_factory=list)

    def qmp(self, connect_timeout: float = 5.0, command_timeout: float = 30.0) -> Qmp:
        """A fresh driver facade on this VM's QMP socket."""
        return Qmp(str(self.qmp_path), connect_timeout=connect_timeout,
                   command_timeout=command_timeout)

    def qemu_io(self, drive: str, command: str) -> str:
        """Run ``qemu-io`` on a live drive via HMP and return what it printed.

        QEMU 7.2 prints qemu-io's output on its own stdout (the HMP reply is empty), so
        this reads the new part of the log; a failed ``read -P`` says "Pattern verification
        failed". A node of an anonymous backend (libxl's qdisk disks) is reached through
        its device (``-d QOM-PATH``): a second writer on the node is refused.
        """
        before = self.log_path.stat().st_size
        qdev = {d.node_name: d.qdev for d in self.qmp().query_block() if not d.device}
        target = f"-d {qdev[drive]}" if drive in qdev else drive  # as its device writes
        self.qmp().human_monitor_command(f'qemu-io {target} "{command}"')
        with self.log_path.open("rb") as handle:
            handle.seek(before)
            return handle.read().decode(errors="replace")

    def has_pattern(self, drive: str, byte: int, offset: int = 0, length: int = 65536) -> bool:
        """True when ``length`` bytes at ``offset`` of the live drive all equal ``byte``."""
        out = self.qemu_io(drive, f"read -P {byte:#x} {offset} {length}")
        return "read " in out and "Pattern verification failed" not in out

    def pmemsave(self, dest: Path, addr: int = 0, size: int = GUEST_RAM) -> bytes:
        """Dump guest-physical memory ``[addr, addr+size)`` to ``dest`` and return it."""
        self.qmp().execute("pmemsave", {"val": addr, "size": size, "filename": str(dest)})
        return dest.read_bytes()

    def memsave(self, dest: Path, addr: int, size: int, cpu: int = 0) -> bytes:
        """Dump guest-virtual memory as CPU ``cpu`` sees it to ``dest`` and return it."""
        self.qmp().execute("memsave", {"val": addr, "size": size, "filename": str(dest),
                                       "cpu-index": cpu})
        return dest.read_bytes()

    def kill(self) -> None:
        """Kill QEMU (SIGKILL) and reap it; safe to call twice."""
        if self.process.poll() is None:
            self.process.kill()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - a kernel-stuck process
            pass


def make_disks(folder: Path, count: int, size: str = "16M", prefix: str = "disk") -> list[Path]:
    """Create ``count`` empty qcow2 images in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{prefix}{k}.qcow2" for k in range(count)]
    for path in paths:
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), size],
                       check=True, capture_output=True, timeout=60)
    return paths


def vm_argv(qmp_path: Path, disks: Sequence[Path], incoming: bool = False,
            paused: bool = False, extra: Sequence[str] = ()) -> list[str]:
    """The QEMU command line: q35/TCG, 64 MiB, no defaults, virtio disks drvK/diskK.

    A disk whose name ends in ``.raw`` is opened as raw, any other as qcow2.
    """
    argv = [QEMU, "-machine", "q35,accel=tcg", "-m", "64", "-nographic", "-nodefaults",
            "-qmp", f"unix:{qmp_path},server=on,wait=off"]
    for k, disk in enumerate(disks):
        fmt = "raw" if Path(disk).suffix == ".raw" else "qcow2"
        argv += ["-drive", f"file={disk},format={fmt},if=none,id=drv{k},node-name=disk{k}",
                 "-device", f"virtio-blk-pci,drive=drv{k}"]
    if incoming:
        argv += ["-incoming", "defer"]
    if paused:
        argv.append("-S")
    return argv + list(extra)


#: Where ``libxl_argv`` follows Xen 4.17's tools/libs/light/libxl_dm.c (RELEASE-4.17.5).
LIBXL_DM_SOURCE = {
    "-S": "libxl_dm.c:1237 (QEMU starts paused; libxl sends 'cont' when it is set up)",
    "ide": "libxl_dm.c:1088 (qemu_disk_ide_drive_string: file=%s,if=ide,index=%d,"
           "media=disk,format=%s,cache=writeback), appended at libxl_dm.c:2036",
}


def libxl_argv(qmp_path: Path, disks: Sequence[Path], vdevs: Sequence[str],
               hvm: bool = False) -> list[str]:
    """A device model started as libxl starts Xen's for qcow2 disks (see LIBXL_DM_SOURCE).

    Each disk is served as QEMU's xen-block (qdisk) backend serves it: a ``file`` node
    ``<vdev>-file`` with ``locking=off`` (QEMU's "xen_disk: Disable file locking for the
    PV disk backend"), a ``<vdev>-qcow2`` format node on it, and a device attached
    through the node name: an anonymous backend, so ``query-block`` shows ``"device":
    ""`` and a QOM path in ``qdev``, as on a real Xen host (reference/xen-in-qemu.md).
    virtio-blk stands in for the Xen PV frontend. For HVM each disk among the first
    four is also emulated: ``-drive file=IMG,if=ide,index=N`` on the same file (device
    ``ide0-hd0``..., a generated node name, file locking on). QEMU starts with ``-S``.
    """
    argv = [QEMU, "-machine", "pc,accel=tcg", "-m", "64", "-nographic", "-nodefaults",
            "-qmp", f"unix:{qmp_path},server=on,wait=off", "-S"]
    for k, (disk, vdev) in enumerate(zip(disks, vdevs, strict=True)):
        argv += ["-blockdev", f"driver=file,filename={disk},node-name={vdev}-file,locking=off",
                 "-blockdev", f"driver=qcow2,file={vdev}-file,node-name={vdev}-qcow2",
                 "-device", f"virtio-blk-pci,drive={vdev}-qcow2"]
        if hvm and k < 4:
            argv += ["-drive", f"file={disk},if=ide,index={k},media=disk,format=qcow2,"
                               "cache=writeback"]
    return argv


@contextmanager
def start_vm(folder: Path, disks: int | Sequence[Path] = 1, *, incoming: bool = False,
             paused: bool = False, extra: Sequence[str] = (), name: str = "vm",
             timeout: float = 20.0, libxl: Sequence[str] = (),
             hvm: bool = False) -> Iterator[QemuVm]:
    """Start QEMU with ``disks`` (a count of new images, or existing paths); always kill it.

    With ``libxl`` (the disks' vdevs) it is started as libxl starts a Xen device model
    (``libxl_argv``), and sent ``cont`` once its socket answers, as libxl does.
    """
    folder.mkdir(parents=True, exist_ok=True)
    paths = make_disks(folder / f"{name}-disks", disks) if isinstance(disks, int) else list(disks)
    qmp_path = folder / f"{name}.qmp"
    log_path = folder / f"{name}.log"
    argv = (libxl_argv(qmp_path, paths, libxl, hvm) if libxl
            else vm_argv(qmp_path, paths, incoming, paused, extra))
    with log_path.open("wb") as log:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
    vm = QemuVm(process, qmp_path, paths, log_path, argv)
    try:
        _wait_for_socket(vm, timeout)
        if libxl:
            vm.qmp().cont()
        yield vm
    finally:
        vm.kill()


@pytest.fixture
def qemu_vms(tmp_path: Path) -> Iterator[Callable[..., QemuVm]]:
    """Factory fixture: ``qemu_vms(disks=2, incoming=True, name="b")``; all killed at teardown."""
    if shutil.which(QEMU) is None or shutil.which("qemu-img") is None:
        pytest.skip(f"{QEMU} or qemu-img is not installed")
    with ExitStack() as stack:
        yield lambda **kwargs: stack.enter_context(start_vm(tmp_path, **kwargs))


def _wait_for_socket(vm: QemuVm, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if vm.process.poll() is not None:
            raise RuntimeError(f"QEMU exited with {vm.process.returncode}: "
                               f"{vm.log_path.read_text(errors='replace')[-2000:]}")
        if vm.qmp_path.exists():
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                try:
                    probe.connect(str(vm.qmp_path))
                    return
                except OSError:
                    pass
        time.sleep(0.02)
    raise RuntimeError(f"QEMU's QMP socket {vm.qmp_path} did not appear in {timeout:g}s")


def _die_with_parent() -> None:
    """In the child before exec: get SIGKILL when the test process dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
