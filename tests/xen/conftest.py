"""A Xen host made of honest parts: the fake ``xl`` on PATH, a real QEMU as device model.

The fake xl (tests/fakes/xl) keeps its domains in a folder; the domain's disks are
served by a real ``qemu-system-x86_64`` started as libxl starts Xen's device model for
qcow2 disks (``tests.qemu_vm.libxl_argv``: qdisk nodes ``xvda-qcow2`` on an anonymous
backend, and for HVM also an emulated IDE drive on the same file), whose QMP socket
appears, as libxl's does, as ``<xen-qmp-dir>/qmp-libxl-<domid>`` (a link to it). So the
xl calls are the fake's and the QMP calls are real.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from commands.bootstrap import open_services
from commands.config.settings import Settings
from tests.conftest import REPO, Run
from tests.fakes.fake_xl_state import FAKE_XL, FakeDisk, FakeXl
from tests.qemu_vm import QEMU, QemuVm, start_vm

DOMID = 5
UUID = "8d3e0a52-6f0e-4c41-9a7b-3f1d5b2e9c10"
VDEVS = ("xvda", "xvdb")
#: The QMP node of each disk: what QEMU's qdisk backend names it (``<vdev>-<format>``).
NODES = tuple(f"{v}-qcow2" for v in VDEVS)


@dataclass
class XenHost:
    """The fake xl's state, the running device model, and how to run xlsnap against them."""

    root: Path
    fake: FakeXl
    vm: QemuVm | None
    disks: list[Path]
    home: Path
    config_dir: Path
    qmp_dir: Path
    bin_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def lib_dir(self) -> Path:
        """libxl's XEN_LIB_DIR (its QMP socket locks live there)."""
        path = self.root / "lib-xen"
        path.mkdir(exist_ok=True)
        return path

    def env(self, **extra: str) -> dict[str, str]:
        env = {**os.environ, **self.fake.env(), "XLSNAP_HOME": str(self.home),
               "XLSNAP_CONFIG_DIR": str(self.config_dir), "XLSNAP_XEN_QMP_DIR": str(self.qmp_dir),
               "XLSNAP_XEN_LIB_DIR": str(self.lib_dir),
               "XLSNAP_TOOLSTACK": "xen", "PATH": f"{self.bin_dir}{os.pathsep}{os.environ['PATH']}",
               **self.extra_env, **extra}
        for key in ("XLSNAP_FAKE_XL_FAIL", "XLSNAP_FAKE_XL_NO_HYPERVISOR", "XLSNAP_QMP_DIR",
                    "XLSNAP_FAKE_XL_NOT_ROOT"):
            if key not in extra and key not in self.extra_env:
                env.pop(key, None)
        return env

    def xlsnap(self, *args: str, **extra: str) -> Run:
        proc = subprocess.run([sys.executable, "-m", "commands", *args], capture_output=True,
                              text=True, env=self.env(**extra), cwd=REPO, timeout=120)
        return Run(proc.returncode, proc.stdout, proc.stderr)

    def calls(self) -> list[list[str]]:
        """Every xl call since the domain was made, as argv lists."""
        return self.fake.calls()

    def mutating_calls(self) -> list[list[str]]:
        """The xl calls that change something (no list, domid, domname)."""
        return [c for c in self.calls() if c[0] not in ("list", "domid", "domname")]

    def domain(self) -> dict:
        dom = self.fake.domain("web")
        assert dom is not None, "the domain is gone"
        return dom

    def events(self) -> list:
        """The domain's ledger events, oldest first (read in-process, not through a CLI)."""
        svc = open_services(Settings.resolve(str(self.home), None, str(self.config_dir)))
        try:
            return list(svc.app.domain_events(UUID))
        finally:
            svc.close()

    def steps(self) -> list[list[str]]:
        """``[phase, action, *argv]`` of each step of the last operation, in order."""
        events = self.events()
        first = max(i for i, e in enumerate(events) if type(e).__name__ == "OperationStarted")
        return [[e.phase, e.action, *e.argv] for e in events[first:]
                if type(e).__name__ == "StepStarted"]

    def last_outcome(self) -> str:
        finished = [e for e in self.events() if type(e).__name__ == "OperationFinished"]
        return finished[-1].outcome if finished else ""

    def record(self, name: str) -> dict:
        return self.record_of(None, name)

    def record_of(self, domain: str | None, name: str) -> dict:
        """Snapshot ``name``'s record in the ledger of ``domain`` (None: ``web``)."""
        svc = open_services(Settings.resolve(str(self.home), None, str(self.config_dir)))
        try:
            key = UUID if domain is None else self.fake.domain(domain)["config"]["c_info"]["uuid"]
            events = list(svc.app.domain_events(key))
        finally:
            svc.close()
        taken = [e for e in events if type(e).__name__ == "SnapshotTaken" and e.name == name]
        assert taken, f"no snapshot {name!r} in the ledger"
        return dict(taken[-1].record)

    @property
    def domain_dir(self) -> Path:
        dirs = [p for p in self.home.iterdir() if p.is_dir()]
        assert len(dirs) == 1, dirs
        return dirs[0]

    def link_device_model(self, domid: int) -> None:
        """Let ``qmp-libxl-<domid>`` reach the running QEMU (as libxl's socket would)."""
        assert self.vm is not None
        link = self.qmp_dir / f"qmp-libxl-{domid}"
        link.unlink(missing_ok=True)
        link.symlink_to(self.vm.qmp_path)


@pytest.fixture
def xen_host(tmp_path: Path) -> Iterator[XenHost]:
    """PV domain ``web`` (id 5, qcow2 disks xvda, xvdb) under the fake xl, its device model
    started as libxl starts it (qdisk nodes only)."""
    yield from _xen_host(tmp_path, hvm=False)


@pytest.fixture
def xen_hvm_host(tmp_path: Path) -> Iterator[XenHost]:
    """The same domain as HVM: each file also open as an emulated IDE disk (ide0-hd0...)."""
    yield from _xen_host(tmp_path, hvm=True)


def _xen_host(tmp_path: Path, hvm: bool) -> Iterator[XenHost]:
    if shutil.which(QEMU) is None or shutil.which("qemu-img") is None:
        pytest.skip(f"{QEMU} or qemu-img is not installed")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "xl").symlink_to(FAKE_XL)
    qmp_dir = tmp_path / "run-xen"
    qmp_dir.mkdir()
    with start_vm(tmp_path / "dm", disks=2, name="dm", libxl=VDEVS, hvm=hvm) as vm:
        fake = FakeXl(tmp_path / "xl-state")
        fake.add_domain("web", domid=DOMID, memory_mib=64, uuid=UUID,
                        type="hvm" if hvm else "pv",
                        disks=[FakeDisk(str(d), v) for d, v in zip(vm.disks, VDEVS)])
        fake.attach_device_model("web", vm.argv, vm.process.pid, str(vm.qmp_path),
                                 str(vm.log_path))
        host = XenHost(tmp_path, fake, vm, vm.disks, tmp_path / "state", tmp_path / "xen",
                       qmp_dir, bin_dir)
        host.config_dir.mkdir()
        host.link_device_model(DOMID)
        try:
            yield host
        finally:
            _kill_device_models(fake)


def _kill_device_models(fake: FakeXl) -> None:
    """End the device models the fake xl started (they are not this process's children)."""
    for pid in fake.device_model_pids():
        try:
            if b"qemu-system" in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
