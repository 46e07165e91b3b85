"""A running QEMU domain reverted to an external snapshot that has images on top by now,
memory included, and then the snapshot deleted while its branches run (a live
``block-stream``): the branch that was current stays, every content is as it was.

base <- e1's overlay <- e2's overlay (live); e1 holds memory. Revert to e1: QEMU restarts
on a fresh overlay on base with e1's memory; e2's chain is untouched. Delete e1: base
(no tags) has two children, e1's overlay (e2's state) and the live overlay, so base is
streamed into both (the live one by QEMU) and removed. Revert to e2 at the end.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import read_pattern
from tests.live.conftest import LiveDomain
from tests.live.test_live_external_delete import K, files, put, reads, record

pytestmark = pytest.mark.slow


def shared_reads(path: Path, layers: list[tuple[int, int]]) -> bool:
    """What an image QEMU has open reads (``qemu-io -U -r``: shared, read-only)."""
    for byte, offset in layers:
        proc = subprocess.run(["qemu-io", "-U", "-r", "-f", "qcow2", "-c",
                               f"read -P {byte} {offset} 64k", str(path)],
                              capture_output=True, text=True, timeout=60)
        if proc.returncode != 0 or "Pattern verification failed" in proc.stdout:
            return False
    return True


def external(live: LiveDomain, name: str, memory: str | None = None) -> None:
    cfg = live.root / f"{name}.cfg"
    cfg.write_text(f'name = "{name}"\ntype = "external"\n'
                   + (f'memory = "{memory}"\n' if memory else ""))
    run = live.xlsnap("snapshot-create", "web", str(cfg))
    assert run.code == 0, run.err


def test_revert_under_later_overlays_with_memory_then_delete_it_by_streaming(
        live: LiveDomain) -> None:
    put(live, 0xb0, 1 * K)
    live.poke(b"memory-of-e1....")
    external(live, "e1", memory=str(live.root / "e1.save"))
    put(live, 0xb1, 2 * K)
    external(live, "e2")
    put(live, 0xb2, 3 * K)
    live.poke(b"memory-of-now...")
    o1 = [Path(d["path"]) for d in live.record("e1")["disks"]]
    o2 = [Path(d["path"]) for d in live.record("e2")["disks"]]

    run = live.xlsnap("snapshot-revert", "-n", "e1", "web")
    assert run.code == 0, run.err
    assert live.status() == "running"
    assert live.peek() == b"memory-of-e1...."
    tops = live.live_files()
    branch = [Path(tops["drv0"]), Path(tops["drv1"])]
    assert set(branch).isdisjoint(o1 + o2)
    assert record(live, "e1")["disks"][0]["branches"] == [str(branch[0])]
    for k in range(2):            # the restarted QEMU has written nothing yet: read its files
        assert shared_reads(branch[k], [(0xb0, 1 * K)])
        assert not shared_reads(branch[k], [(0xb1, 2 * K)])
    assert live.xlsnap("check", "web").code == 0
    put(live, 0xc1, 5 * K)

    run = live.xlsnap("snapshot-delete", "web", "e1")
    assert run.code == 0, run.err
    assert "live-block-stream" in [a for _, a in live.steps()]
    assert live.live_files() == tops
    assert not live.disks[0].exists()                       # base streamed into both
    assert live.xlsnap("check", "web").code == 0, live.xlsnap("check", "web").out
    assert record(live, "e2")["disks"][0]["file"] == str(o1[0])

    run = live.xlsnap("snapshot-revert", "-n", "e2", "web")
    assert run.code == 0, run.err
    assert live.peek() == b"memory-of-e1...."               # e2 has no memory: a cold boot
    now = live.live_files()
    assert set(now.values()).isdisjoint({*map(str, branch + o1 + o2)})
    assert live.xlsnap("check", "web").code == 0
    live.stop_qemu()
    e2_state = [(0xb0, 1 * K), (0xb1, 2 * K)]
    for k in range(2):
        assert reads(o1[k], e2_state), "e2's state changed"
        assert reads(o2[k], [*e2_state, (0xb2, 3 * K)]), "the old current branch changed"
        assert reads(branch[k], [(0xb0, 1 * K), (0xc1, 5 * K)]), "e1's branch lost data"
        assert not read_pattern(branch[k], 0xb1, 2 * K)
        assert reads(Path(now[f"drv{k}"]), e2_state), "the revert to e2 is not e2's state"
    assert files(live) == sorted(p.name for p in [*o1, *o2, *branch, *map(Path, now.values())])


def test_revert_of_a_running_domain_to_a_mixed_snapshot_under_a_later_overlay(
        live: LiveDomain) -> None:
    """m1: drv0 external, drv1 internal; then e2 puts an overlay on drv0 only. The revert
    gives drv0 a fresh overlay on m1's base and applies m1's tag on drv1."""
    put(live, 0xd0, 1 * K)
    cfg = live.root / "m1.cfg"
    cfg.write_text('name = "m1"\ndisk = [ "drv0,type=external", "drv1,type=internal" ]\n')
    assert live.xlsnap("snapshot-create", "web", str(cfg)).code == 0
    put(live, 0xd1, 2 * K)
    cfg = live.root / "e2.cfg"
    cfg.write_text('name = "e2"\ndisk = [ "drv0,type=external", "drv1,type=internal" ]\n')
    assert live.xlsnap("snapshot-create", "web", str(cfg)).code == 0
    put(live, 0xd2, 3 * K)
    tops = live.live_files()
    run = live.xlsnap("snapshot-revert", "-n", "m1", "web")
    assert run.code == 0, run.err
    now = live.live_files()
    assert now["drv1"] == tops["drv1"] and now["drv0"] != tops["drv0"]
    assert live.tags()["drv1"] == ("m1", "e2")
    assert live.xlsnap("check", "web").code == 0
    live.stop_qemu()
    m1 = [(0xd0, 1 * K)]
    assert reads(now["drv0"], m1) and not read_pattern(now["drv0"], 0xd1, 2 * K)
    assert reads(now["drv1"], m1) and not read_pattern(now["drv1"], 0xd1, 2 * K)
    assert reads(tops["drv0"], [*m1, (0xd1, 2 * K), (0xd2, 3 * K)]), "e2's branch changed"
