"""The real-Xen tier: runs only when selected (``-m xen_real``) or ``XLSNAP_XEN_REAL=1``.

It builds a Debian dom0 with Xen 4.17 (scripts/xen_in_qemu/build.sh, cached under
/var/tmp/xlsnap-xen), boots it under QEMU/TCG and reads the scenarios' outcomes from the
serial log: about 10 minutes from nothing, so the default runs leave it out. It skips,
with the reason, when the host cannot build the dom0 (not root; no debootstrap, mkfs.ext4,
qemu-system-x86_64; the apt mirror unreachable). XLSNAP_XEN_REAL_LOG keeps the serial log
at that path (CI prints its scenario lines); XLSNAP_XEN_REAL_READ=LOG only reads an
existing log (no build, no boot: for working on the assertions).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.xen_real.serial_log import SerialLog, read

SCRIPTS = REPO / "scripts" / "xen_in_qemu"


def selected(config: pytest.Config) -> bool:
    """True when the command line's -m names the tier, or the environment asks for it."""
    return "xen_real" in (config.getoption("markexpr") or "") \
        or os.environ.get("XLSNAP_XEN_REAL") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if selected(config):
        return
    skip = pytest.mark.skip(reason="the real-Xen tier (~10 min) runs with -m xen_real "
                                   "or XLSNAP_XEN_REAL=1")
    for item in items:
        if item.get_closest_marker("xen_real") is not None:
            item.add_marker(skip)


def _mirror() -> str:
    """The mirror build.sh uses: XLSNAP_XEN_MIRROR, else apt's first URIs line."""
    if os.environ.get("XLSNAP_XEN_MIRROR"):
        return os.environ["XLSNAP_XEN_MIRROR"]
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.exists():
        for line in sources.read_text().splitlines():
            if line.startswith("URIs:"):
                return line.split()[1]
    return "http://deb.debian.org/debian"


def _mirror_reachable() -> bool:
    try:
        with urllib.request.urlopen(f"{_mirror().rstrip('/')}/dists/bookworm/Release",
                                    timeout=20) as reply:
            return reply.status == 200
    except OSError:
        return False


@pytest.fixture(scope="session")
def xen_log(tmp_path_factory: pytest.TempPathFactory) -> SerialLog:
    """Build (or reuse) the dom0 image, boot it once, parse what the scenarios printed."""
    if os.environ.get("XLSNAP_XEN_REAL_READ"):
        return read(Path(os.environ["XLSNAP_XEN_REAL_READ"]))
    if os.geteuid() != 0:
        pytest.skip("the real-Xen tier needs root (debootstrap, chroot)")
    for tool in ("debootstrap", "mkfs.ext4", "qemu-system-x86_64", "qemu-img"):
        if shutil.which(tool) is None:
            pytest.skip(f"the real-Xen tier needs {tool} (apt-get install debootstrap "
                        "e2fsprogs qemu-system-x86 qemu-utils)")
    build = subprocess.run([str(SCRIPTS / "build.sh")], capture_output=True, text=True,
                           timeout=2700)
    if build.returncode != 0:
        if not _mirror_reachable():
            pytest.skip(f"the apt mirror {_mirror()} is unreachable: cannot build the dom0")
        pytest.fail(f"build.sh failed ({build.returncode}):\n{build.stderr[-3000:]}")
    image = build.stdout.strip().splitlines()[-1]
    log = Path(os.environ.get("XLSNAP_XEN_REAL_LOG")
               or tmp_path_factory.mktemp("xen") / "serial.log")
    run = subprocess.run([str(SCRIPTS / "run.sh"), image], capture_output=True, text=True,
                         env={**os.environ, "XLSNAP_XEN_LOG": str(log)}, timeout=2100)
    print(run.stderr)
    print(run.stdout)
    assert log.exists(), f"run.sh left no serial log ({run.returncode}): {run.stderr[-2000:]}"
    return read(log)
