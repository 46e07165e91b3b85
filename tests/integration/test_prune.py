"""prune on real images: what it keeps reads back intact, what it drops is gone."""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.conftest import Run, Scratch, read_pattern, tags, write_pattern
from tests.e2e.test_bad_input import event_count

Xlsnap = Callable[..., Run]


def test_prune_keeps_the_rules_current_and_held_and_deletes_the_rest(
        scratch: Scratch, xlsnap: Xlsnap) -> None:
    for k in range(6):
        write_pattern(scratch.disk_a, 0x30 + k)
        assert xlsnap("snapshot-create", "-n", f"s{k}", "web").code == 0
    assert xlsnap("snapshot-hold", "web", "s1", "audit").code == 0
    assert xlsnap("snapshot-revert", "web", "s2").code == 0          # s2 is current
    before = event_count(scratch.ledger)
    dry = xlsnap("prune", "--keep-last", "2", "--dry-run", "web")
    assert dry.code == 0, dry.err
    planned = [line.split()[2] for line in dry.out.splitlines() if line.startswith("would")]
    assert planned == ["s0", "s3"]
    assert event_count(scratch.ledger) == before                     # dry run: nothing
    assert tags(scratch.disk_a) == [f"s{k}" for k in range(6)]
    run = xlsnap("prune", "--keep-last", "2", "--list", "web")
    assert run.code == 0, run.err
    assert "2 deleted, 4 kept" in run.out
    assert tags(scratch.disk_a) == ["s1", "s2", "s4", "s5"]
    assert sorted(p.name for p in scratch.domain_dir.glob("snapshotdata-*")) == [
        f"snapshotdata-{n}.libxl-json" for n in ("s1", "s2", "s4", "s5")]
    for k in (1, 2, 4, 5):                                           # kept: intact
        assert xlsnap("snapshot-revert", "web", f"s{k}").code == 0
        assert read_pattern(scratch.disk_a, 0x30 + k)
    history = json.loads(xlsnap("history", "--json", "--kind", "prune", "web").out)
    started = [e for e in history if e["event"] == "OperationStarted"]
    assert len(started) == 1                                         # ONE operation
    details = started[0]["data"]["details"]
    assert details["policy"]["last"] == 2
    assert {d["name"]: d["reason"] for d in details["decisions"] if not d["keep"]} == {
        "s0": "no rule keeps it", "s3": "no rule keeps it"}
    op_id = started[0]["operation_id"]
    deleted = [e["data"]["name"] for e in history if e["event"] == "SnapshotDeleted"]
    assert deleted == ["s0", "s3"]
    assert {e["operation_id"] for e in history} == {op_id}
    assert not json.loads(xlsnap("history", "--json", "--kind", "delete", "web").out)


def test_prune_without_rules_or_keeping_nothing_is_refused(scratch: Scratch,
                                                           xlsnap: Xlsnap) -> None:
    assert xlsnap("snapshot-create", "-n", "s0", "web").code == 0
    before = event_count(scratch.ledger)
    run = xlsnap("prune", "web")
    assert run.code == 2 and "no keep rule" in run.err
    run = xlsnap("prune", "--keep-within", "0s", "web")
    assert run.code == 2 and "invalid span" in run.err
    assert event_count(scratch.ledger) == before and tags(scratch.disk_a) == ["s0"]


def test_prune_leaves_an_external_snapshot_to_snapshot_delete_and_its_content_intact(
        scratch: Scratch, xlsnap: Xlsnap) -> None:
    from tests.disk_states import states, take

    write_pattern(scratch.disk_a, 0x41)
    take(scratch, "e0", external=True)                   # disks now on overlays
    for k in range(3):
        write_pattern(scratch.disk_a, 0x42 + k)
        assert xlsnap("snapshot-create", "-n", f"s{k}", "web").code == 0
    before = states(scratch)
    run = xlsnap("prune", "--keep-last", "1", "--list", "web")
    assert run.code == 0, run.err
    assert "e0" in run.out and "left to snapshot-delete" in run.out, run.out
    assert "2 deleted, 2 kept" in run.out, run.out
    after = states(scratch)
    assert after == {k: v for k, v in before.items()
                     if not k.startswith(("snap:s0:", "snap:s1:"))}
