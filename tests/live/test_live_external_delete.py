"""Deleting external snapshots of a running QEMU domain: QEMU's block jobs merge the chain
it has open while the guest runs, and no other snapshot's content changes.

Chain on both disks: ``base [tag s0] <- e1's overlay <- e2's overlay`` (the disk QEMU
writes to), each layer written with its own byte at its own offset (and all at offset 0),
so a merge that loses or moves a layer's data shows. After each delete every remaining
snapshot and the current disk are read with qemu-io once QEMU has quit.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import read_pattern, tag_reads
from tests.live.conftest import LiveDomain

pytestmark = pytest.mark.slow
K = 65536
DRIVES = ("drv0", "drv1")


def put(live: LiveDomain, byte: int, offset: int) -> None:
    """Write 64 KiB of ``byte`` at ``offset`` and at 0 of both live drives."""
    q = live.qmp()
    for drive in DRIVES:
        for at in sorted({0, offset}):
            q.human_monitor_command(f'qemu-io {drive} "write -P {byte:#x} {at} 64k"')


def external(live: LiveDomain, name: str, **env: str) -> tuple[int, str]:
    cfg = live.root / f"{name}.cfg"
    cfg.write_text(f'name = "{name}"\ntype = "external"\n')
    run = live.xlsnap("snapshot-create", "web", str(cfg), **env)
    return run.code, run.err


def reads(path: Path | str, layers: list[tuple[int, int]]) -> bool:
    """The image reads each ``(byte, offset)`` written to it or below, the last at 0."""
    return all(read_pattern(path, b, o) for b, o in layers) and read_pattern(path, layers[-1][0])


def build(live: LiveDomain) -> dict[str, list[Path]]:
    """s0 (internal) holding 0xa0, e1 holding 0xa1 over it, e2 holding 0xa2, now 0xa3."""
    put(live, 0xa0, 1 * K)
    assert live.xlsnap("snapshot-create", "-n", "s0", "web").code == 0
    put(live, 0xa1, 2 * K)
    assert external(live, "e1") == (0, "")
    put(live, 0xa2, 3 * K)
    assert external(live, "e2") == (0, "")
    put(live, 0xa3, 4 * K)
    return {n: [Path(d["path"]) for d in live.record(n)["disks"]] for n in ("e1", "e2")}


LAYERS = [(0xa0, 1 * K), (0xa1, 2 * K), (0xa2, 3 * K), (0xa3, 4 * K)]


def record(live: LiveDomain, name: str) -> dict:
    """The snapshot's record as the ledger holds it now (a delete may have edited it)."""
    return dict([e for e in live.events() if type(e).__name__ in ("SnapshotTaken",
                 "SnapshotEdited") and getattr(e, "new_name", e.name) == name][-1].record)


def files(live: LiveDomain) -> list[str]:
    return sorted(p.name for p in live.disks[0].parent.glob("*.qcow2"))


@pytest.mark.parametrize("order", [("e2", "e1"), ("e1", "e2")])
def test_deleting_each_external_snapshot_of_a_running_domain_keeps_every_other_content(
        live: LiveDomain, order: tuple[str, str]) -> None:
    over = build(live)
    for name in order:
        run = live.xlsnap("snapshot-delete", "web", name)
        assert run.code == 0, run.err
        assert live.status() == "running"
        assert live.xlsnap("check", "web").code == 0, live.xlsnap("check", "web").out
        for drive in DRIVES:
            assert live.vm.has_pattern(drive, 0xa3)
    jobs = [e.action for e in live.events() if type(e).__name__ == "StepStarted"]
    assert "live-block-commit" in jobs
    assert live.xlsnap("snapshot-list", "web").out.split() .count("s0") == 1
    tops = live.live_files()
    assert tops == {"drv0": str(live.disks[0]), "drv1": str(live.disks[1])}, tops
    assert files(live) == sorted(p.name for p in live.disks)   # every overlay merged away
    live.stop_qemu()
    for k in range(2):
        assert reads(live.disks[k], LAYERS), f"current disk {live.disks[k]} lost data"
        assert tag_reads(live.disks[k], "s0", 0xa0), "internal snapshot s0 changed"


def test_deleting_the_middle_snapshot_leaves_the_last_one_as_it_was(live: LiveDomain) -> None:
    over = build(live)
    run = live.xlsnap("snapshot-delete", "web", "e1")        # base <- (e1 merged) <- e2
    assert run.code == 0, run.err
    e2 = record(live, "e2")["disks"]
    assert [d["file"] for d in e2] == [str(p) for p in live.disks]   # e1's overlay merged
    assert live.live_files() == {"drv0": str(over["e2"][0]), "drv1": str(over["e2"][1])}
    assert not over["e1"][0].exists() and not over["e1"][1].exists()
    assert live.xlsnap("check", "web").code == 0
    live.stop_qemu()
    for k in range(2):
        assert reads(live.disks[k], LAYERS[:3]), "e2's state is not what it was"
        assert not read_pattern(live.disks[k], 0xa3, 4 * K)
        assert reads(over["e2"][k], LAYERS), "the current disk lost data"
        assert tag_reads(live.disks[k], "s0", 0xa0)
