"""xlsnap against a real Xen 4.17: the scenarios of scripts/xen_in_qemu/scenarios.sh.

One boot (build.sh, then run.sh) per session; each scenario's outcome is a test here, so
a failure names the scenario and carries its detail line from dom0's console. Skips, with
the reason, when the host cannot build the dom0 (no root, debootstrap, mkfs.ext4 or
qemu-system-x86_64, or the apt mirror unreachable). XLSNAP_XEN_REAL_LOG keeps the serial
log at that path (CI prints its scenario lines).
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

pytestmark = pytest.mark.xen_real

SCRIPTS = REPO / "scripts" / "xen_in_qemu"
GUEST_SCENARIOS = ["boot", "create-disk-only", "create-memory", "list", "list-long",
                   "content", "revert-memory", "revert-disk-only", "delete",
                   "crash-recover", "crash-recover-effect", "final-check"]
SCENARIOS = ["xen-host", "xl-transcript"] + [f"{guest}-{name}" for guest in ("pv1", "hvm1")
                                             for name in GUEST_SCENARIOS]


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


def test_the_run_finished(xen_log: SerialLog) -> None:
    """dom0's init reached its end (XLSNAP-DONE): no wedged boot, no timeout."""
    assert xen_log.done, f"no XLSNAP-DONE; scenarios seen: {xen_log.scenarios}"


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario(xen_log: SerialLog, name: str) -> None:
    """Scenario NAME ran on the real Xen host and passed."""
    assert name in xen_log.scenarios, f"scenario {name} did not run (log: {sorted(xen_log.scenarios)})"
    status, detail = xen_log.scenarios[name]
    assert status == "PASS", f"{name}: {status} {detail}"
