"""Shared fixtures: scratch domains made of real qcow2 images, and a CLI runner."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from commands.services import Services, open_services
from commands.settings import Settings

REPO = Path(__file__).resolve().parent.parent

requires_qemu_img = pytest.mark.skipif(shutil.which("qemu-img") is None,
                                       reason="qemu-img is not installed")


def qemu_img(*args: str) -> subprocess.CompletedProcess[str]:
    """Run qemu-img for a test's own set-up or check; fails the test on error."""
    return subprocess.run(["qemu-img", *args], check=True, capture_output=True, text=True,
                          timeout=60)


def image_info(path: Path | str) -> dict:
    """``qemu-img info --output=json`` of an image, parsed."""
    return json.loads(qemu_img("info", "--output=json", str(path)).stdout)


def tags(path: Path | str) -> list[str]:
    """Names of the internal snapshots in a qcow2 image, in qemu-img's order."""
    return [s["name"] for s in image_info(path).get("snapshots", [])]


def tags_unlocked(path: Path | str) -> list[str]:
    """``tags`` read with ``-U`` (no lock): for polling an image another process writes.

    A locking read while xlsnap works could make xlsnap's own qemu-img (or its check of
    QEMU's lock bytes) fail, which is the test's doing, not xlsnap's.
    """
    info = json.loads(qemu_img("info", "-U", "--output=json", str(path)).stdout)
    return [s["name"] for s in info.get("snapshots", [])]


def write_pattern(path: Path | str, byte: int, offset: int = 0, length: int = 65536) -> None:
    """Write ``length`` bytes of ``byte`` at ``offset`` into a qcow2 image (qemu-io)."""
    subprocess.run(["qemu-io", "-f", "qcow2", "-c",
                    f"write -P {byte} {offset} {length}", str(path)],
                   check=True, capture_output=True, text=True, timeout=60)


def read_pattern(path: Path | str, byte: int, offset: int = 0, length: int = 65536) -> bool:
    """True when ``length`` bytes at ``offset`` all equal ``byte``."""
    proc = subprocess.run(["qemu-io", "-f", "qcow2", "-c",
                           f"read -P {byte} {offset} {length}", str(path)],
                          capture_output=True, text=True, timeout=60)
    return proc.returncode == 0 and "Pattern verification failed" not in proc.stdout


@contextmanager
def held_open(path: Path) -> Iterator[None]:
    """``qemu-io`` with the image open read-write (QEMU's image lock), as a QEMU holds it;
    entered once qemu-io has answered, so the image is open by then."""
    holder = subprocess.Popen(["qemu-io", "-f", "qcow2", str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert holder.stdin is not None and holder.stdout is not None
        holder.stdin.write("help open\n")  # answered once the image is open
        holder.stdin.flush()
        holder.stdout.readline()
        yield
    finally:
        holder.communicate("quit\n", timeout=30)


@contextmanager
def mounted_tmpfs(mount: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` (mode 0700) on ``mount``; skips the test where none can be had."""
    mount.mkdir(mode=0o700, exist_ok=True)
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs",
                           str(mount)], capture_output=True, text=True, timeout=30)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=30)


#: Test folders whose tests run the real CLI as a process on real qemu-img images: the
#: ``cli`` tier. Unit and in-process tests (tests/unit, tests/differential) are the fast
#: tier, ``-m 'not slow and not cli'``.
CLI_TIER = ("integration", "e2e")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--via-service", action="store_true",
                     help="Run every CLI process through one xlsnapd (or XLSNAP_TEST_VIA_SERVICE=1).")


@pytest.fixture(scope="session", autouse=True)
def via_service(request: pytest.FixtureRequest) -> Iterator[None]:
    """With ``--via-service``: one xlsnapd for the session, which every ``python -m commands``
    reaches through ``XLSNAP_SOCKET`` (the environment the tests copy)."""
    from tests.service_fixture import start_xlsnapd, via_service_requested

    if not via_service_requested(request.config.getoption("--via-service")):
        yield
        return
    service = start_xlsnapd(dict(os.environ))
    os.environ["XLSNAP_SOCKET"] = str(service.socket)
    try:
        yield
    finally:
        del os.environ["XLSNAP_SOCKET"]
        service.stop()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tests of the ``cli`` tier (by folder), so tiers can be selected."""
    for item in items:
        parts = Path(str(item.fspath)).relative_to(REPO).parts
        if len(parts) > 1 and parts[0] == "tests" and parts[1] in CLI_TIER:
            item.add_marker(pytest.mark.cli)


@dataclass
class Scratch:
    """A stopped domain ``web`` with two qcow2 disks, and the folders xlsnap uses."""

    root: Path
    config_dir: Path
    images: Path
    home: Path
    uuid: str = "6a1c2f0e-8f7b-4a53-9a0e-2b1d3c4e5f60"
    name: str = "web"

    @property
    def disk_a(self) -> Path:
        return self.images / "a.qcow2"

    @property
    def disk_b(self) -> Path:
        return self.images / "b.qcow2"

    @property
    def config(self) -> Path:
        return self.config_dir / f"{self.name}.cfg"

    @property
    def domain_dir(self) -> Path:
        return self.home / self.uuid

    @property
    def ledger(self) -> Path:
        return self.home / "ledger.sqlite"

    def env(self) -> dict[str, str]:
        return {**os.environ, "XLSNAP_HOME": str(self.home),
                "XLSNAP_CONFIG_DIR": str(self.config_dir)}

    def settings(self) -> Settings:
        return Settings.resolve(str(self.home), None, str(self.config_dir))

    def services(self) -> Services:
        return open_services(self.settings())

    def write_config(self, disks: list[str], name: str | None = None) -> Path:
        """(Re)write a domain config with these disk specs."""
        name = name or self.name
        body = "\n".join(f"    '{d}'," for d in disks)
        path = self.config_dir / f"{name}.cfg"
        path.write_text(f'name = "{name}"\nuuid = "{self.uuid}"\nmemory = 512\n'
                        f"# the guest's disks\ndisk = [\n{body}\n]\n")
        return path

    def snapshot_files(self) -> list[str]:
        """Every file xlsnap keeps for the domain (metadata, memory images)."""
        if not self.domain_dir.exists():
            return []
        return sorted(p.name for p in self.domain_dir.iterdir())


@pytest.fixture
def scratch(tmp_path: Path) -> Scratch:
    """A fresh scratch domain with two empty 16 MiB qcow2 disks."""
    if shutil.which("qemu-img") is None:
        pytest.skip("qemu-img is not installed")
    s = Scratch(tmp_path, tmp_path / "xen", tmp_path / "images", tmp_path / "state")
    s.config_dir.mkdir()
    s.images.mkdir()
    for disk in (s.disk_a, s.disk_b):
        qemu_img("create", "-q", "-f", "qcow2", str(disk), "16M")
    s.write_config([f"{s.disk_a},qcow2,xvda,rw",
                    f"format=qcow2, vdev=xvdb, access=rw, target={s.disk_b}"])
    return s


@dataclass
class Run:
    """The outcome of one ``xlsnap`` process."""

    code: int
    out: str
    err: str


@pytest.fixture
def xlsnap(scratch: Scratch) -> Iterator[object]:
    """Run the real ``xlsnap`` CLI in a subprocess against the scratch domain."""

    def run(*args: str, env: dict[str, str] | None = None) -> Run:
        proc = subprocess.run([sys.executable, "-m", "commands", *args], capture_output=True,
                              text=True, env=env or scratch.env(), cwd=REPO, timeout=120)
        return Run(proc.returncode, proc.stdout, proc.stderr)

    yield run
