"""A failed live external snapshot on top of a chain: the undo removes only its own overlay.

Chain ``base <- e1 <- e2`` on a running QEMU, guest data 0xaa at e1, 0xbb at e2, 0xcc
now; a third external create whose memory image lands on a full filesystem (a 64 KiB
tmpfs) fails and is undone. Each image of the chain must still read what it held:
the undo commits the new overlay into its direct backing file, never the whole chain.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import mounted_tmpfs, read_pattern, tag_reads
from tests.live.conftest import LiveDomain

pytestmark = pytest.mark.slow


@pytest.fixture
def full_fs(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs (mode 0700): a memory image does not fit in it."""
    with mounted_tmpfs(tmp_path / "full", "64k") as mount:
        yield mount


def _external(live: LiveDomain, name: str, memory: str | None = None,
              **env: str) -> tuple[int, str]:
    cfg = live.root / f"{name}.cfg"
    text = f'name = "{name}"\ntype = "external"\n'
    if memory:
        text += f'memory = "{memory}"\n'
    cfg.write_text(text)
    run = live.xlsnap("snapshot-create", "web", str(cfg), **env)
    return run.code, run.err


@pytest.mark.parametrize("how", ["memory-on-a-full-disk", "killed-then-recovered"])
def test_failed_external_create_on_a_chain_commits_only_its_own_overlay(
        live: LiveDomain, full_fs: Path, how: str) -> None:
    for drive in ("drv0", "drv1"):
        live.write(drive, 0xaa)
    assert _external(live, "e1") == (0, "")
    for drive in ("drv0", "drv1"):
        live.write(drive, 0xbb)
    assert _external(live, "e2") == (0, "")
    for drive in ("drv0", "drv1"):
        live.write(drive, 0xcc)
    tops = live.live_files()
    e1 = [Path(d["path"]) for d in live.record("e1")["disks"]]
    e2 = [Path(d["path"]) for d in live.record("e2")["disks"]]
    assert tops == {"drv0": str(e2[0]), "drv1": str(e2[1])}

    if how == "memory-on-a-full-disk":
        code, err = _external(live, "e3", memory=str(full_fs / "e3.save"))
        assert code == 1 and "nothing changed" in err, err
    else:       # killed once the overlays are live, before the memory is saved
        code, err = _external(live, "e3", XLSNAP_FAULT_INJECT="kill:3:intent")
        assert code == -9, err
        run = live.xlsnap("recover", "web")
        assert run.code == 0 and "undid create 'e3'" in run.out, run.err
    undo = [e for e in live.events() if type(e).__name__ == "StepStarted"
            and e.phase == "undo" and e.action == "live-external-snapshot"][-1]
    commits = [a for a in undo.argv if a.startswith("{") and "top-node" in a]
    assert len(commits) == 2 and all("base-node" in a for a in commits), undo.argv

    assert live.live_files() == tops                       # e2's overlays are live again
    assert live.status() == "running"
    assert live.vm.has_pattern("drv0", 0xcc) and live.vm.has_pattern("drv1", 0xcc)
    assert sorted(p.name for p in live.disks[0].parent.iterdir()) == sorted(
        [p.name for p in live.disks] + [p.name for p in e1 + e2])
    assert live.xlsnap("check", "web").code == 0
    live.stop_qemu()
    for k in range(2):                                      # what every image reads
        assert read_pattern(live.disks[k], 0xaa), f"base {live.disks[k]} changed"
        assert read_pattern(e1[k], 0xbb), f"e1's overlay {e1[k]} changed"
        assert read_pattern(e2[k], 0xcc), f"the current disk {e2[k]} lost its data"


def test_reverting_an_external_snapshot_keeps_snapshots_inside_its_overlay(
        live: LiveDomain) -> None:
    live.write("drv0", 0xaa)
    assert _external(live, "e1") == (0, "")
    live.write("drv0", 0xbb)
    assert live.xlsnap("snapshot-create", "-n", "s2", "web").code == 0   # inside e1's overlay
    live.write("drv0", 0xcc)
    e1 = Path(live.record("e1")["disks"][0]["path"])
    run = live.xlsnap("snapshot-revert", "-n", "e1", "web")
    assert run.code == 0, run.err
    assert live.live_files()["drv0"] != str(e1)          # a fresh overlay; e1's stays
    assert live.tags() == {"drv0": (), "drv1": ()}
    assert live.xlsnap("check", "web").code == 0
    live.stop_qemu()
    assert read_pattern(e1, 0xcc) and tag_reads(e1, "s2", 0xbb)
