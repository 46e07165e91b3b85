"""Shared fixtures: scratch domains made of real qcow2 images, and a CLI runner."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from commands.bootstrap import Services, open_services
from commands.config.settings import Settings
from tests.pg_cluster import PgCluster, pg_bin

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


def tag_reads(path: Path | str, tag: str, byte: int, length: int = 65536) -> bool:
    """True when internal snapshot ``tag`` of ``path`` holds ``length`` bytes of ``byte``
    at offset 0 (read from a copy made with ``qemu-img convert -l``: qemu-io cannot
    open a snapshot)."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "tag.qcow2"
        qemu_img("convert", "-U", "-l", f"snapshot.name={tag}", "-O", "qcow2", str(path),
                 str(copy))
        return read_pattern(copy, byte, 0, length)


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
    parser.addoption("--ledger-backend", choices=("sqlite", "postgresql"), default=None,
                     help="where the tests' ledgers live (default: XLSNAP_TEST_LEDGER, "
                          "else sqlite); postgresql starts a throw-away cluster")
    parser.addoption("--via-service", action="store_true",
                     help="Run every CLI process through one xlsnapd (or XLSNAP_TEST_VIA_SERVICE=1).")


def ledger_backend(config: pytest.Config) -> str:
    """``sqlite`` or ``postgresql``: the option, else ``XLSNAP_TEST_LEDGER``."""
    return config.getoption("--ledger-backend") or os.environ.get(
        "XLSNAP_TEST_LEDGER", "sqlite")


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
    """Mark the tests of the ``cli`` tier (by folder), so tiers can be selected; on
    PostgreSQL, skip the tests that open a SQLite ledger file themselves."""
    postgres = ledger_backend(config) == "postgresql"
    for item in items:
        if postgres and item.get_closest_marker("sqlite_only"):
            item.add_marker(pytest.mark.skip(
                reason="reads or alters the SQLite ledger file itself"))
        if not postgres and item.get_closest_marker("postgresql_only"):
            item.add_marker(pytest.mark.skip(reason="runs with --ledger-backend=postgresql"))
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
    #: A PostgreSQL ledger's URL when the suite runs on PostgreSQL (else the home's file).
    ledger_url: str | None = None

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

    @property
    def location(self) -> str:
        """The ledger as ``--ledger`` takes it: the URL on PostgreSQL, else the file."""
        return self.ledger_url or str(self.ledger)

    def env(self) -> dict[str, str]:
        env = {**os.environ, "XLSNAP_HOME": str(self.home),
               "XLSNAP_CONFIG_DIR": str(self.config_dir)}
        if self.ledger_url:
            env["XLSNAP_LEDGER"] = self.ledger_url
        return env

    def settings(self) -> Settings:
        return Settings.resolve(str(self.home), self.ledger_url, str(self.config_dir))

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


@pytest.fixture(scope="session")
def pg_cluster(request: pytest.FixtureRequest) -> Iterator[PgCluster]:
    """A throw-away PostgreSQL cluster for the session (skips if PostgreSQL is missing)."""
    bin_dir = pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    cluster = PgCluster(bin_dir)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture
def pg_url(pg_cluster: PgCluster) -> Iterator[str]:
    """The URL of a fresh, empty PostgreSQL database, dropped after the test."""
    name = pg_cluster.new_database()
    yield pg_cluster.url(name)
    try:
        pg_cluster.start_if_stopped()
        pg_cluster.drop_database(name)
    except Exception:  # noqa: BLE001 - the cluster goes at the end of the session anyway
        pass


@pytest.fixture
def ledger_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a test's ledger lives: a fresh PostgreSQL database's URL when the suite
    runs on PostgreSQL, else a SQLite file in ``tmp_path``."""
    if ledger_backend(request.config) == "postgresql":
        return str(request.getfixturevalue("pg_url"))
    return str(tmp_path / "ledger.sqlite")


@pytest.fixture
def scratch(request: pytest.FixtureRequest, tmp_path: Path) -> Scratch:
    """A fresh scratch domain with two empty 16 MiB qcow2 disks."""
    if shutil.which("qemu-img") is None:
        pytest.skip("qemu-img is not installed")
    s = Scratch(tmp_path, tmp_path / "xen", tmp_path / "images", tmp_path / "state")
    if ledger_backend(request.config) == "postgresql":
        s.ledger_url = str(request.getfixturevalue("pg_url"))
        # Processes a test starts itself (and Settings.resolve in-process) find it too.
        request.getfixturevalue("monkeypatch").setenv("XLSNAP_LEDGER", s.ledger_url)
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
