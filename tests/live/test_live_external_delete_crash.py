"""The crash matrix of a live external delete: killed at each block job step's intent,
effect and outcome point, or a step made to fail; and a job QEMU still runs after xlsnap
died. After ``recover`` (or the delete run again, when a failure left it half done) the
domain runs, ``check`` finds nothing, no job is left in QEMU, no file is orphaned, and
every remaining snapshot and the current disk read what they held (qemu-io, QEMU gone).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from commands.drivers.qmp_chain import backing_chain
from tests.conftest import read_pattern, tag_reads
from tests.live.conftest import LiveDomain
from tests.live.test_live_external_delete import LAYERS, build, files, reads

pytestmark = pytest.mark.slow
POINTS = ("intent", "effect", "outcome")
#: e2: the active commit of the disks QEMU writes to; e1: a commit in the middle.
CELLS = [(name, f"kill:{k}:{p}") for name in ("e2", "e1") for k in (1, 2) for p in POINTS]
CELLS += [(name, f"fail:{k}:intent") for name in ("e2", "e1") for k in (1, 2, 3)]


def settle(live: LiveDomain, name: str, over: dict[str, list[Path]]) -> None:
    """The delete of ``name`` is complete and nothing was lost or left behind."""
    assert live.status() == "running"
    check = live.xlsnap("check", "web")
    assert check.code == 0, check.out + check.err
    assert live.qmp().execute("query-jobs") == []
    listed = [r["name"] for r in json.loads(live.xlsnap("snapshot-list", "--json", "web").out)]
    assert sorted(listed) == sorted({"s0", "e1", "e2"} - {name})
    kept = over["e1"] if name == "e2" else over["e2"]     # the overlays still in use
    assert files(live) == sorted([p.name for p in live.disks] + [p.name for p in kept])
    assert live.live_files() == {"drv0": str(kept[0]), "drv1": str(kept[1])}
    live.stop_qemu()
    base = LAYERS[:2] if name == "e2" else LAYERS[:3]     # the remaining snapshot's state
    for k in range(2):
        assert reads(live.disks[k], base), "the remaining external snapshot changed"
        assert not read_pattern(live.disks[k], LAYERS[len(base)][0], LAYERS[len(base)][1])
        assert reads(kept[k], LAYERS), "the current disk lost data"
        assert tag_reads(live.disks[k], "s0", 0xa0), "internal snapshot s0 changed"


@pytest.mark.parametrize("name, fault", CELLS, ids=[f"{n}-{f}" for n, f in CELLS])
def test_recovered_live_external_delete_loses_nothing(live: LiveDomain, name: str,
                                                       fault: str) -> None:
    over = build(live)
    run = live.xlsnap("snapshot-delete", "web", name, XLSNAP_FAULT_INJECT=fault)
    assert "Traceback" not in run.err
    if fault.startswith("kill"):
        assert run.code == -9, run.err
        recovered = live.xlsnap("recover", "web")
        assert recovered.code == 0 and f"finished delete '{name}'" in recovered.out, \
            recovered.err
    elif fault == "fail:1:intent":                          # nothing merged: nothing changed
        assert run.code == 1, run.err
        assert live.xlsnap("check", "web").code == 0
        assert live.xlsnap("snapshot-delete", "web", name).code == 0
    else:                                    # merged already, now incomplete: finish it
        assert run.code == 3 and "run snapshot-delete again" in run.err, run.err
        again = live.xlsnap("snapshot-delete", "web", name)
        assert again.code == 0, again.err
    settle(live, name, over)


@pytest.mark.parametrize("name", ["e2", "e1"])
def test_a_commit_job_left_by_a_killed_delete_is_finished_by_recover(
        live: LiveDomain, name: str) -> None:
    """What QEMU holds when xlsnap dies mid-job: e2's active commit waiting, ready, for
    ``job-complete``; e1's commit in the middle waiting, pending, for ``job-finalize``."""
    over = build(live)
    run = live.xlsnap("snapshot-delete", "web", name, XLSNAP_FAULT_INJECT="kill:1:intent")
    assert run.code == -9
    step = [e for e in live.events() if type(e).__name__ == "StepStarted"][-1]
    assert step.action == "live-block-commit"
    job = json.loads(step.argv[3])["job-id"]
    q = live.qmp()
    chain = backing_chain(q, "drv0")                        # [e2's overlay, e1's, base]
    assert [f for f, _ in chain] == [str(over["e2"][0]), str(over["e1"][0]),
                                     str(live.disks[0])]
    top = 0 if name == "e2" else 1
    q.execute("block-commit", {"job-id": job, "device": "drv0", "auto-dismiss": False,
                               "auto-finalize": False, "top-node": chain[top][1],
                               "base-node": chain[top + 1][1]})
    waiting = "ready" if name == "e2" else "pending"
    deadline = time.monotonic() + 30
    while q.execute("query-jobs")[0]["status"] != waiting and time.monotonic() < deadline:
        time.sleep(0.05)
    assert q.execute("query-jobs")[0]["status"] == waiting
    recovered = live.xlsnap("recover", "web")
    assert recovered.code == 0, recovered.err
    settle(live, name, over)
