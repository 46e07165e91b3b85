"""The crash matrix of a live revert to an external snapshot with images on top: killed at
each new step's intent, effect and outcome point (fresh overlays, the record's branch,
QEMU's start), or that step made to fail. ``recover`` undoes it: QEMU runs again on the
disks it had, with the memory it had, and no fresh overlay is left behind.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.live.conftest import LiveDomain
from tests.live.test_live_external_delete import K, files, put, reads, record
from tests.live.test_live_external_revert import external

pytestmark = pytest.mark.slow
POINTS = ("intent", "effect", "outcome")
#: 4, 5: overlay-create of each disk; 6: metadata-replace (the branch); 7: qemu-launch.
ACTION = {4: "overlay-create", 5: "overlay-create", 6: "metadata-replace", 7: "qemu-launch"}
CELLS = [f"kill:{k}:{p}" for k in (4, 5, 6, 7) for p in POINTS]
CELLS += [f"fail:{k}:intent" for k in (4, 5, 6, 7)]


@pytest.mark.parametrize("fault", CELLS)
def test_recovered_live_revert_under_overlays_leaves_the_domain_as_it_was(
        live: LiveDomain, fault: str) -> None:
    put(live, 0xb0, 1 * K)
    live.poke(b"memory-of-e1....")
    external(live, "e1", memory=str(live.root / "e1.save"))
    put(live, 0xb1, 2 * K)
    external(live, "e2")
    put(live, 0xb2, 3 * K)
    live.poke(b"memory-of-now...")
    tops, before = live.live_files(), files(live)
    o2 = [Path(d["path"]) for d in live.record("e2")["disks"]]
    run = live.xlsnap("snapshot-revert", "-n", "e1", "web", XLSNAP_FAULT_INJECT=fault)
    assert "Traceback" not in run.err
    if fault.startswith("kill"):
        assert run.code == -9, run.err
        steps = [a for phase, a in live.steps() if phase == "do"]
        assert steps[-1] == ACTION[int(fault.split(":")[1])], steps
        recovered = live.xlsnap("recover", "web")
        assert recovered.code == 0 and "undid revert 'e1'" in recovered.out, recovered.err
    else:
        assert run.code == 1, run.err
    assert live.status() == "running"
    assert live.peek() == b"memory-of-now..."
    assert live.live_files() == tops
    assert files(live) == before                            # no fresh overlay left
    assert "branches" not in record(live, "e1")["disks"][0]
    assert live.xlsnap("check", "web").code == 0
    live.stop_qemu()
    for k in range(2):
        assert reads(o2[k], [(0xb0, 1 * K), (0xb1, 2 * K), (0xb2, 3 * K)])
