"""The crash matrix of a live snapshot: killed at every step boundary, or every step failing.

After ``recover`` the domain runs again, the ledger and QEMU agree (``check``), and
nothing is orphaned: the snapshot is all there (tags or overlays live, memory image)
or nothing of it is (no tag, no overlay file, no memory image, the base disks live).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from tests.live.conftest import LiveDomain

pytestmark = pytest.mark.slow
POINTS = ("intent", "effect", "outcome")


@dataclass(frozen=True)
class Shape:
    """One kind of live snapshot: how it is asked for, and how many steps it has."""

    name: str
    steps: int
    config: str | None
    disk_only: bool = False


SHAPES = [Shape("internal-memory", 4, None), Shape("external-memory", 5, 'type="external"\n'),
          Shape("disk-only", 2, None, disk_only=True)]
CELLS = [(shape, f"kill:{k}:{p}") for shape in SHAPES for k in range(1, shape.steps + 1)
         for p in POINTS]
CELLS += [(shape, f"fail:{k}:intent") for shape in SHAPES for k in range(1, shape.steps + 1)]


def _argv(live: LiveDomain, shape: Shape) -> list[str]:
    argv = ["snapshot-create", "-n", "s1"] + (["--disk-only"] if shape.disk_only else [])
    argv.append("web")
    if shape.config:
        cfg = live.root / "snap.cfg"
        cfg.write_text(shape.config)
        argv.append(str(cfg))
    return argv


@pytest.mark.parametrize("shape, fault", CELLS, ids=[f"{s.name}-{f}" for s, f in CELLS])
def test_recovered_live_create_leaves_the_domain_running_and_nothing_orphaned(
        live: LiveDomain, shape: Shape, fault: str) -> None:
    live.write("drv0", 0x11)
    run = live.xlsnap(*_argv(live, shape), XLSNAP_FAULT_INJECT=fault)
    assert run.code == (-9 if fault.startswith("kill") else 1), run.err
    assert "Traceback" not in run.err
    recovered = live.xlsnap("recover", "web")
    assert recovered.code == 0, recovered.err
    assert live.status() == "running"
    assert live.xlsnap("check", "web").code == 0
    assert live.xlsnap("recover", "web").out.strip() == "web: nothing in flight"
    taken = [r["name"] for r in json.loads(live.xlsnap("snapshot-list", "--json", "web").out)]
    files = sorted(p.name for p in live.disks[0].parent.iterdir())
    saves = sorted(p.name for p in live.home.rglob("*.save"))
    if taken:
        assert taken == ["s1"]
        if shape.config:
            assert files == ["disk0.qcow2", "disk0.s1.qcow2", "disk1.qcow2", "disk1.s1.qcow2"]
            assert saves == ["s1.save"]
            assert all(f.endswith(".s1.qcow2") for f in live.live_files().values())
        else:
            assert live.tags() == {"drv0": ("s1",), "drv1": ("s1",)} and saves == []
    else:
        assert files == ["disk0.qcow2", "disk1.qcow2"] and saves == []
        assert live.tags() == {"drv0": (), "drv1": ()}
        assert live.live_files() == {"drv0": str(live.disks[0]), "drv1": str(live.disks[1])}
    assert live.vm.has_pattern("drv0", 0x11)


def test_matrix_size() -> None:
    """Quoted in the closing note."""
    assert len(CELLS) == sum(s.steps * (len(POINTS) + 1) for s in SHAPES) == 44


#: A QEMU external revert: pause, safety memory, quit, 2 fresh overlays, the record's
#: branches, launch, load, unpause, safety image removal.
RESTART_STEPS = 10


@pytest.mark.parametrize("step", range(1, RESTART_STEPS + 1))
def test_killed_restart_revert_is_recovered_to_one_state_or_the_other(
        live: LiveDomain, step: int) -> None:
    live.write("drv0", 0x11)
    live.poke(b"memory-at-snap-A")
    cfg = live.root / "ext.cfg"
    cfg.write_text('name = "e1"\ntype = "external"\n')
    assert live.xlsnap("snapshot-create", "web", str(cfg)).code == 0
    live.write("drv0", 0x22)
    live.poke(b"memory-later--B!")
    run = live.xlsnap("snapshot-revert", "-n", "e1", "web",
                      XLSNAP_FAULT_INJECT=f"kill:{step}:effect")
    assert run.code == -9, run.err
    recovered = live.xlsnap("recover", "web")
    assert recovered.code == 0, recovered.err
    assert live.status() == "running"
    forward = "finished" in recovered.out
    assert live.peek() == (b"memory-at-snap-A" if forward else b"memory-later--B!")
    overlay = live.disks[0].with_name("disk0.e1.qcow2")
    fresh = [p for p in live.disks[0].parent.iterdir() if "-revert-" in p.name]
    assert len(fresh) == (2 if forward else 0), fresh          # no half-made overlay left
    now = live.live_files()["drv0"]
    assert now == (str(fresh[0] if "disk0" in fresh[0].name else fresh[1]) if forward
                   else str(overlay))
    leftovers = [p.name for p in live.disks[0].parent.iterdir() if "xlsnap-revert" in p.name]
    leftovers += [p.name for p in live.home.rglob(".xlsnap-revert*")]
    assert leftovers == []
    assert live.xlsnap("check", "web").code == 0
    live.stop_qemu()
    assert live.disk_has(overlay, 0x22)                         # the old branch stays
    assert live.disk_has(now, 0x11 if forward else 0x22)
