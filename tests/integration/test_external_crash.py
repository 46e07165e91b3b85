"""The fault-injection matrix of external deletes and reverts: killed at every step's
intent, effect and outcome, and every step failing; after ``recover`` (and, for a
delete left part-way, running it again) every remaining snapshot and the current disks
read the same bytes as before, ``check`` agrees, and no file is orphaned."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from commands.planning.image_graph import record_files
from commands.handlers.recover import recover_all
from tests.conftest import REPO, Scratch, image_info
from tests.disk_states import check_clean, current_disks, ledger_of, states, take, without
from tests.integration.test_external_delete import _branches, _chain, _internal_parent, _leaf

POINTS = ("intent", "effect", "outcome")


@dataclass(frozen=True)
class Scenario:
    name: str
    steps: int
    prepare: Callable[[Scratch, object], None]
    argv: list[str]
    victim: str


SCENARIOS = [
    Scenario("delete-leaf", 6, _leaf, ["snapshot-delete", "web", "e1"], "e1"),
    Scenario("delete-middle", 8, _chain, ["snapshot-delete", "web", "e2"], "e2"),
    Scenario("delete-stream", 7, _branches, ["snapshot-delete", "web", "e1"], "e1"),
    Scenario("revert", 4, _chain, ["snapshot-revert", "web", "e1"], "e1"),
    Scenario("revert-under", 4, _internal_parent, ["snapshot-revert", "web", "i1"], "i1"),
]
CELLS = [(sc, f"kill:{k}:{p}") for sc in SCENARIOS for k in range(1, sc.steps + 1)
         for p in POINTS]
CELLS += [(sc, f"fail:{k}:intent") for sc in SCENARIOS for k in range(1, sc.steps + 1)]


def _run(scratch: Scratch, argv: list[str], fault: str | None = None
         ) -> subprocess.CompletedProcess:
    env = {**scratch.env(), **({"XLSNAP_FAULT_INJECT": fault} if fault else {})}
    return subprocess.run([sys.executable, "-m", "commands", *argv], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def orphans(scratch: Scratch) -> set[str]:
    """Images in the folder that no record, current disk or backing chain of them names."""
    known = set(current_disks(scratch).values())
    for entry in ledger_of(scratch).entries.values():
        for disk in entry["record"]["disks"]:
            known.update(record_files(disk))
    todo = list(known)
    while todo:
        path = todo.pop()
        if os.path.exists(path):
            backing = image_info(path).get("full-backing-filename")
            if backing and backing not in known:
                known.add(backing)
                todo.append(backing)
    return {str(p) for p in scratch.images.iterdir()} - known


def _xlsnap(scratch: Scratch) -> Callable[..., object]:
    def run(*argv: str) -> object:
        proc = _run(scratch, list(argv))

        class Done:
            code = proc.returncode
        return Done
    return run


@pytest.mark.slow
@pytest.mark.parametrize("scenario, fault", CELLS, ids=[f"{sc.name}-{f}" for sc, f in CELLS])
def test_recovery_keeps_every_state_and_orphans_nothing(scratch: Scratch, scenario: Scenario,
                                                        fault: str) -> None:
    scenario.prepare(scratch, _xlsnap(scratch))
    before = states(scratch)
    proc = _run(scratch, scenario.argv, fault)
    assert "Traceback" not in proc.stderr
    if fault.startswith("kill"):
        assert proc.returncode == -9
    else:
        assert proc.returncode in (0, 1, 3), proc.stderr
    svc = scratch.services()
    try:
        recover_all(svc)
        incremental = svc.view.dump()
        svc.view.rebuild()
        assert svc.view.dump() == incremental
    finally:
        svc.close()
    ledger = ledger_of(scratch)
    assert ledger.in_flight is None
    victim = ledger.entries.get(scenario.victim)
    if victim is not None and not victim["complete"] or proc.returncode == 3:
        # a delete left part-way: the snapshot is incomplete; running it again finishes it
        again = _run(scratch, scenario.argv)
        assert again.returncode == 0, again.stderr
        ledger = ledger_of(scratch)
    after = states(scratch)
    if scenario.name.startswith("revert"):
        expect = dict(before)
        if ledger.current == scenario.victim:
            expect.update({k: before[f"snap:{scenario.victim}:{k[8:]}"] for k in before
                           if k.startswith("current:")})
        assert after == expect
    elif scenario.victim in ledger.entries:
        assert proc.returncode == 1 and after == before    # failed and undone: all as it was
    else:
        assert after == without(before, scenario.victim)
    assert check_clean(scratch) == []
    left = {line.split(" on ", 1)[1].split(" failed")[0] for line in proc.stderr.splitlines()
            if "warning: image-remove on " in line}
    assert orphans(scratch) == left            # a removal that failed is named, nothing else
    assert not left or fault.startswith("fail")
    assert sorted(scratch.snapshot_files()) == sorted(
        f"snapshotdata-{n}.libxl-json" for n in ledger.entries)


def test_matrix_covers_every_step() -> None:
    assert len(CELLS) == sum(sc.steps * (len(POINTS) + 1) for sc in SCENARIOS) == 116
