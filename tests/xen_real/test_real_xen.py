"""xlsnap against a real Xen 4.17: the scenarios of scripts/xen_in_qemu/scenarios.sh.

One boot per session (the ``xen_log`` fixture in conftest.py); each scenario's outcome is
a test here, so a failure names the scenario and carries its detail line from dom0's
console.
"""

from __future__ import annotations

import pytest

from tests.xen_real.serial_log import SerialLog

pytestmark = pytest.mark.xen_real

GUEST_SCENARIOS = ["boot", "create-disk-only", "create-memory", "list", "list-long",
                   "content", "revert-memory", "revert-disk-only", "delete",
                   "crash-recover", "crash-recover-effect", "final-check"]
SCENARIOS = ["xen-host", "xl-transcript"] + [f"{guest}-{name}" for guest in ("pv1", "hvm1")
                                             for name in GUEST_SCENARIOS]


def test_the_run_finished(xen_log: SerialLog) -> None:
    """dom0's init reached its end (XLSNAP-DONE): no wedged boot, no timeout."""
    assert xen_log.done, f"no XLSNAP-DONE; scenarios seen: {xen_log.scenarios}"


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario(xen_log: SerialLog, name: str) -> None:
    """Scenario NAME ran on the real Xen host and passed."""
    assert name in xen_log.scenarios, f"scenario {name} did not run (log: {sorted(xen_log.scenarios)})"
    status, detail = xen_log.scenarios[name]
    assert status == "PASS", f"{name}: {status} {detail}"
