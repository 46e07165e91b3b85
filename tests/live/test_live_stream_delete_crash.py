"""The crash matrix of a live external delete whose plan streams (``live-block-stream``).

base <- e1's overlay <- e2's overlay, e1 with memory; revert to e1 (QEMU restarts on a
fresh overlay on base, written then): base, with no tags, has two children, so deleting
e1 streams base into e1's overlay (qemu-img) and into the live overlay (QEMU), and removes
it. Killed at the stream steps' and their neighbours' intent, effect and outcome point, or
a step made to fail: after ``recover`` (or the delete run again) the domain runs, ``check``
finds nothing, no job is left in QEMU, no file is orphaned, and e2's state, the old branch
and the current disk read what they held (qemu-io, QEMU gone).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from commands.drivers.qmp_chain import backing_chain
from tests.conftest import read_pattern
from tests.live.conftest import LiveDomain
from tests.live.test_live_external_delete import K, files, put, reads, record
from tests.live.test_live_external_revert import external

pytestmark = pytest.mark.slow
#: The plan: 1 live-block-stream into drv0's live overlay, 2 backing-stream into drv0's
#: e1 overlay (qemu-img), 3 and 4 the same on drv1, 5 memory-remove, 6 metadata-remove,
#: 7 and 8 image-remove of the two bases.
CELLS = [f"kill:{k}:{p}" for k in (1, 2) for p in ("intent", "effect", "outcome")]
CELLS += ["kill:3:effect"] + [f"fail:{k}:intent" for k in (1, 2, 3, 5)]
PLAN = ["live-block-stream", "backing-stream"] * 2 + [
    "memory-remove", "metadata-remove", "image-remove", "image-remove"]


def build(live: LiveDomain) -> dict[str, list[Path]]:
    """e1 (0xb0, memory) <- e2 (0xb1) <- old branch (0xb2); reverted to e1, then 0xc1."""
    put(live, 0xb0, 1 * K)
    external(live, "e1", memory=str(live.root / "e1.save"))
    put(live, 0xb1, 2 * K)
    external(live, "e2")
    put(live, 0xb2, 3 * K)
    o1 = [Path(d["path"]) for d in live.record("e1")["disks"]]
    o2 = [Path(d["path"]) for d in live.record("e2")["disks"]]
    run = live.xlsnap("snapshot-revert", "-n", "e1", "web")
    assert run.code == 0, run.err
    tops = live.live_files()
    put(live, 0xc1, 5 * K)
    return {"o1": o1, "o2": o2, "branch": [Path(tops["drv0"]), Path(tops["drv1"])]}


def plan(live: LiveDomain) -> list[str]:
    """The actions of the first delete's plan, in order."""
    started = next(e for e in live.events() if type(e).__name__ == "OperationStarted"
                   and e.kind == "delete")
    return [s["action"] for s in started.details["plan"]]


def settle(live: LiveDomain, tree: dict[str, list[Path]]) -> None:
    """e1's delete is complete and nothing was lost or left behind.

    A delete run again after a failure plans on what it finds: base streamed into the
    live overlay only has one child left, e1's overlay, which is then committed into it
    (e2's record names base from then on) instead of base streamed into it.
    """
    o1, o2, branch = tree["o1"], tree["o2"], tree["branch"]
    assert live.status() == "running"
    check = live.xlsnap("check", "web")
    assert check.code == 0, check.out + check.err
    assert live.qmp().execute("query-jobs") == []
    listed = [r["name"] for r in json.loads(live.xlsnap("snapshot-list", "--json", "web").out)]
    assert listed == ["e2"]
    state = [Path(d["file"]) for d in record(live, "e2")["disks"]]
    assert all(state[k] in (o1[k], live.disks[k]) for k in range(2)), state
    assert files(live) == sorted(p.name for p in [*state, *o2, *branch])   # e1's files gone
    assert not (live.root / "e1.save").exists()
    assert not list(live.home.rglob("snapshotdata-e1*"))
    assert live.live_files() == {"drv0": str(branch[0]), "drv1": str(branch[1])}
    live.stop_qemu()
    e2_state = [(0xb0, 1 * K), (0xb1, 2 * K)]
    for k in range(2):
        assert reads(state[k], e2_state), "e2's state changed"
        assert not read_pattern(state[k], 0xb2, 3 * K)
        assert reads(o2[k], [*e2_state, (0xb2, 3 * K)]), "the old current branch changed"
        assert reads(branch[k], [(0xb0, 1 * K), (0xc1, 5 * K)]), "the current disk lost data"
        assert not read_pattern(branch[k], 0xb1, 2 * K)


@pytest.mark.parametrize("fault", CELLS)
def test_recovered_live_streaming_delete_loses_nothing(live: LiveDomain, fault: str) -> None:
    tree = build(live)
    run = live.xlsnap("snapshot-delete", "web", "e1", XLSNAP_FAULT_INJECT=fault)
    assert "Traceback" not in run.err
    assert plan(live) == PLAN                               # the step numbers hit these
    if fault.startswith("kill"):
        assert run.code == -9, run.err
        recovered = live.xlsnap("recover", "web")
        assert recovered.code == 0 and "finished delete 'e1'" in recovered.out, \
            recovered.out + recovered.err
    elif fault == "fail:1:intent":                          # nothing merged: nothing changed
        assert run.code == 1, run.err
        assert live.xlsnap("check", "web").code == 0
        assert files(live) == sorted(p.name for p in [*tree["o1"], *tree["o2"],
                                                      *tree["branch"], *live.disks])
        again = live.xlsnap("snapshot-delete", "web", "e1")
        assert again.code == 0, again.err
    else:                                    # merged already, now incomplete: finish it
        assert run.code == 3 and "run snapshot-delete again" in run.err, run.err
        again = live.xlsnap("snapshot-delete", "web", "e1")
        assert again.code == 0, again.err
    settle(live, tree)


def test_a_stream_job_left_by_a_killed_delete_is_finished_by_recover(
        live: LiveDomain) -> None:
    """What QEMU holds when xlsnap dies mid-job: the stream into the live overlay
    waiting, pending, for ``job-finalize``."""
    tree = build(live)
    run = live.xlsnap("snapshot-delete", "web", "e1", XLSNAP_FAULT_INJECT="kill:1:intent")
    assert run.code == -9
    step = [e for e in live.events() if type(e).__name__ == "StepStarted"][-1]
    assert step.action == "live-block-stream"
    job = json.loads(step.argv[3])["job-id"]
    q = live.qmp()
    chain = backing_chain(q, "drv0")                        # [the live overlay, base]
    assert [f for f, _ in chain] == [str(tree["branch"][0]), str(live.disks[0])]
    q.execute("block-stream", {"job-id": job, "device": chain[0][1], "auto-dismiss": False,
                               "auto-finalize": False})
    deadline = time.monotonic() + 30
    while q.execute("query-jobs")[0]["status"] != "pending" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert q.execute("query-jobs")[0]["status"] == "pending"
    recovered = live.xlsnap("recover", "web")
    assert recovered.code == 0, recovered.err
    settle(live, tree)
