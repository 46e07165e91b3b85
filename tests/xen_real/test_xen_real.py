"""The real-Xen tier: Xen 4.17, a Debian dom0, real xl and libxl inside QEMU (TCG).

scripts/xen_in_qemu/build.sh makes the dom0 image (debootstrap from apt's mirror, xlsnap
and its wheels installed inside), run.sh boots it, and dom0 runs
scripts/xen_in_qemu/scenarios.py against a PV and an HVM guest with qcow2 disks, each
scenario printing ``XLSNAP-TIER <name> PASS|FAIL`` on the serial console. It takes many
minutes, so it runs only with ``XLSNAP_XEN_REAL=1`` (as .ci/run sets it); select it
alone with ``-m xen_real``. ``XLSNAP_XEN_TIER_DIR`` keeps the work folder (and its
debootstrap) between runs.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TIER = REPO / "scripts" / "xen_in_qemu"

pytestmark = pytest.mark.xen_real


def test_xlsnap_scenarios_pass_on_a_real_xen(tmp_path: Path) -> None:
    if os.environ.get("XLSNAP_XEN_REAL") != "1":
        pytest.skip("the real-Xen tier runs with XLSNAP_XEN_REAL=1")
    missing = [t for t in ("debootstrap", "qemu-system-x86_64", "mkfs.ext4") if not shutil.which(t)]
    if missing or os.geteuid() != 0:
        pytest.skip(f"needs root and {', '.join(missing) or 'nothing else'}")
    work = Path(os.environ.get("XLSNAP_XEN_TIER_DIR") or tmp_path / "xen-tier")
    build = subprocess.run(["bash", str(TIER / "build.sh"), str(work)], capture_output=True,
                           text=True, timeout=3600)
    assert build.returncode == 0, build.stderr[-3000:]
    subprocess.run(["bash", str(TIER / "run.sh"), str(work), "3000"], capture_output=True,
                   text=True, timeout=3300)
    serial = (work / "serial.log").read_text(errors="replace")
    outcomes = scenario_outcomes(serial)
    assert "XLSNAP-TIER dom0 UP" in serial and "XLSNAP-TIER DONE" in serial, serial[-3000:]
    failed = {k: v for k, v in outcomes.items() if v != "PASS"}
    assert outcomes.get("pv-disk-only") == "PASS", serial[-3000:]
    assert len(outcomes) >= 20 and not failed, failed


def scenario_outcomes(serial: str) -> dict[str, str]:
    """``{scenario: "PASS" or "FAIL why"}`` from the serial console's XLSNAP-TIER lines."""
    return {name: outcome.strip() for name, outcome in
            re.findall(r"XLSNAP-TIER (\S+) (PASS|FAIL[^\r\n]*)", serial)}
