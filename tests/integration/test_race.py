"""Two writers starting an operation on one domain: one wins, the other is told who."""

from __future__ import annotations

import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from commands.config.domains import load_domain
from commands.engine.operation import Operation
from ledger.errors import OperationInFlight
from tests.conftest import REPO, Scratch, qemu_img, tags


def test_racing_starts_give_one_winner_and_a_clear_refusal(scratch: Scratch) -> None:
    first, second = scratch.services(), scratch.services()
    second.actor = {**second.actor, "user": "mallory", "host": "other-host"}
    try:
        domain = load_domain(scratch.config_dir, "web")
        ledger_1, ledger_2 = first.ledger_for(domain), second.ledger_for(domain)
        Operation(first.app, ledger_1, first.actor, first.tools).start("create", "a", {}, [])
        with pytest.raises(OperationInFlight) as refused:
            Operation(second.app, ledger_2, second.actor, second.tools).start("create", "b", {}, [])
        assert "create 'a'" in str(refused.value)
        assert first.actor["user"] in str(refused.value)
        events = list(first.app.iter_log())
        assert [type(e).__name__ for _, e in events] == ["Registered", "OperationStarted"]
    finally:
        first.close()
        second.close()


def _hammer(env: dict[str, str], domain: str, prefix: str, rounds: int) -> list[tuple[int, str, str]]:
    results = []
    for j in range(rounds):
        proc = subprocess.run([sys.executable, "-m", "commands", "snapshot-create", "-n",
                               f"{prefix}-{j}", domain], env=env, cwd=REPO,
                              capture_output=True, text=True, timeout=300)
        results.append((proc.returncode, f"{prefix}-{j}", proc.stderr))
    return results


def _add_domain(scratch: Scratch, name: str) -> None:
    disk = scratch.images / f"{name}.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", str(disk), "16M")
    (scratch.config_dir / f"{name}.cfg").write_text(
        f'name = "{name}"\nuuid = "{uuid.uuid4()}"\ndisk = [ "{disk},qcow2,xvda,rw" ]\n')


@pytest.mark.slow
def test_eight_writers_on_one_domain_and_eight_on_their_own(scratch: Scratch) -> None:
    for i in range(8):
        _add_domain(scratch, f"solo{i}")
    env = scratch.env()
    rounds = 4
    with ThreadPoolExecutor(max_workers=16) as pool:
        shared = [pool.submit(_hammer, env, "web", f"p{i}", rounds) for i in range(8)]
        solo = [pool.submit(_hammer, env, f"solo{i}", "s", rounds) for i in range(8)]
        shared_results = [r for f in shared for r in f.result()]
        solo_results = [r for f in solo for r in f.result()]
    everything = shared_results + solo_results
    assert all("locked" not in err and "Traceback" not in err for _, _, err in everything)
    assert {code for code, _, _ in shared_results} <= {0, 3}, [e for c, _, e in shared_results if c not in (0, 3)]
    refused = [err for code, _, err in shared_results if code == 3]
    # the owner of the operation in flight runs: "busy", naming it (or, if it just ended,
    # the ledger changed under the start: try again)
    assert all(("busy: create" in err and " pid " in err and " since " in err)
               or "kept changing" in err for err in refused), refused
    winners = sorted(name for code, name, _ in shared_results if code == 0)
    assert winners and sorted(tags(scratch.disk_a)) == winners == sorted(tags(scratch.disk_b))
    assert all(code == 0 for code, _, _ in solo_results)  # other domains never block
    svc = scratch.services()
    try:
        svc.sync()
        def per_create(disks: int) -> int:  # started, (disks + metadata) x 2, fact, finished
            return 1 + (disks + 1) * 2 + 2

        web = svc.app.get_domain(scratch.uuid)
        assert web is not None and web.in_flight is None
        assert web.version == 1 + per_create(2) * len(winners)  # no event lost or duplicated
        assert sorted(web.entries) == winners
        total = svc.app.max_position()
        assert total == web.version + 8 * (1 + per_create(1) * rounds)
        print(f"winners={len(winners)} refusals={len(refused)} events={total}")
    finally:
        svc.close()
