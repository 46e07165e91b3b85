"""The PostgreSQL server lost at every step boundary of a create and of a delete.

Each cell pauses the command at one point of one step (``pause:STEP:POINT`` of
``commands.engine.fault_injection``: right after a step's intent or outcome is recorded,
or after its side effect ran), stops the server, and lets the command go on: it must
exit 3 in one line, the operation left in flight as a crash leaves it. Once the server
is back, another operation on the domain is refused until ``recover`` finishes it; then
``check`` passes and every snapshot's disks and the current disks read back the bytes
written before (qemu-io patterns).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.conftest import Scratch, read_pattern, tags, write_pattern
from tests.integration.test_busy_owner import start
from tests.pg_cluster import PgCluster

POINTS = ("intent", "effect", "outcome")
STEPS = 3  # tag disk a, tag disk b, write the metadata (a delete: untag a, b, remove it)
CELLS = [(op, f"pause:{k}:{p}") for op in ("create", "delete")
         for k in range(1, STEPS + 1) for p in POINTS]


def _prepare_delete(scratch: Scratch, xlsnap, env: dict[str, str]) -> None:
    for name, (a, b) in (("s1", (0x11, 0x12)), ("s2", (0x21, 0x22))):
        write_pattern(scratch.disk_a, a)
        write_pattern(scratch.disk_b, b)
        assert xlsnap("snapshot-create", "-n", name, "web", env=env).code == 0


@pytest.mark.slow
@pytest.mark.parametrize("operation, fault", CELLS, ids=[f"{o}-{f}" for o, f in CELLS])
def test_server_lost_at_a_step_boundary_leaves_it_in_flight_and_recover_finishes(
        scratch: Scratch, xlsnap, pg_url: str, pg_cluster: PgCluster, tmp_path: Path,
        operation: str, fault: str) -> None:
    # The library retries a lost connection ten times, each waiting this long.
    env = {**scratch.env(), "XLSNAP_LEDGER": pg_url, "XLSNAP_PG_CONNECT_TIMEOUT": "1"}
    if operation == "delete":
        _prepare_delete(scratch, xlsnap, env)
    write_pattern(scratch.disk_a, 0x31)
    write_pattern(scratch.disk_b, 0x32)
    folder = tmp_path / "fault"
    folder.mkdir()
    argv = (["snapshot-create", "-n", "s1", "web"] if operation == "create"
            else ["snapshot-delete", "web", "s1"])
    proc = start(scratch, {**env, "XLSNAP_FAULT_INJECT": fault, "XLSNAP_FAULT_DIR": str(folder)},
                 *argv)
    deadline = time.monotonic() + 60
    while not (folder / "paused").exists() and proc.poll() is None and \
            time.monotonic() < deadline:
        time.sleep(0.05)
    assert (folder / "paused").exists(), proc.communicate(timeout=60)
    pg_cluster.stop("immediate")
    try:
        (folder / "resume").touch()
        _, err = proc.communicate(timeout=120)
    finally:
        pg_cluster.start()
    assert proc.returncode == 3, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err

    busy = xlsnap("snapshot-create", "-n", "other", "web", env=env)
    assert busy.code == 3 and "recover" in busy.err, busy.err
    recovered = xlsnap("recover", "web", env=env)
    assert recovered.code == 0, recovered.err
    assert xlsnap("check", "web", env=env).code == 0
    names = [r["name"] for r in json.loads(xlsnap("snapshot-list", "--json", "web",
                                                  env=env).out)]
    assert tags(scratch.disk_a) == tags(scratch.disk_b) == names
    assert scratch.snapshot_files() == sorted(f"snapshotdata-{n}.libxl-json" for n in names)
    assert read_pattern(scratch.disk_a, 0x31) and read_pattern(scratch.disk_b, 0x32)
    expected = {"s1": (0x11, 0x12), "s2": (0x21, 0x22)}
    if operation == "create":
        assert names in ([], ["s1"])
        expected = {"s1": (0x31, 0x32)}
    else:
        assert names in (["s2"], ["s1", "s2"])
    for name in names:
        write_pattern(scratch.disk_a, 0x41)
        write_pattern(scratch.disk_b, 0x42)
        assert xlsnap("snapshot-revert", "-n", name, "web", env=env).code == 0
        a, b = expected[name]
        assert read_pattern(scratch.disk_a, a) and read_pattern(scratch.disk_b, b), name
