"""Deleting and reverting external snapshots of a stopped domain at every position of
the tree: every remaining snapshot and the current disks read the same bytes after."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import Scratch, tags, write_pattern
from tests.disk_states import check_clean, current_disks, ledger_of, states, take, without

Build = Callable[[Scratch, object], None]
K = 65536


def _write(scratch: Scratch, byte: int) -> None:
    """A distinct pattern at a distinct place on both current disks."""
    for shift, image in enumerate(current_disks(scratch).values()):
        write_pattern(image, byte + 100 * shift, offset=byte * K)


def _chain(scratch: Scratch, xlsnap: object) -> None:
    for n, name in enumerate(("e1", "e2", "e3"), start=1):
        _write(scratch, n)
        take(scratch, name, external=True)
    _write(scratch, 9)


def _branches(scratch: Scratch, xlsnap) -> None:
    _chain(scratch, xlsnap)
    assert xlsnap("snapshot-revert", "web", "e1").code == 0
    _write(scratch, 10)


def _internal_parent(scratch: Scratch, xlsnap) -> None:
    _write(scratch, 1)
    take(scratch, "i1", external=False)
    _write(scratch, 2)
    take(scratch, "e1", external=True)
    _write(scratch, 3)


def _internal_child(scratch: Scratch, xlsnap) -> None:
    _write(scratch, 1)
    take(scratch, "e1", external=True)
    _write(scratch, 2)
    take(scratch, "i2", external=False)
    _write(scratch, 3)


def _leaf(scratch: Scratch, xlsnap) -> None:
    _write(scratch, 1)
    take(scratch, "e1", external=True)
    _write(scratch, 2)


CASES: list[tuple[str, Build, str, list[str]]] = [
    ("leaf", _leaf, "e1", ["a.qcow2", "b.qcow2"]),
    ("chain-bottom", _chain, "e1", ["a.e2.qcow2", "a.e3.qcow2", "a.qcow2",
                                    "b.e2.qcow2", "b.e3.qcow2", "b.qcow2"]),
    ("chain-middle", _chain, "e2", ["a.e1.qcow2", "a.e3.qcow2", "a.qcow2",
                                    "b.e1.qcow2", "b.e3.qcow2", "b.qcow2"]),
    ("chain-top", _chain, "e3", ["a.e1.qcow2", "a.e2.qcow2", "a.qcow2",
                                 "b.e1.qcow2", "b.e2.qcow2", "b.qcow2"]),
    ("several-children", _branches, "e1", None),
    ("abandoned-branch", _branches, "e3", None),
    ("internal-parent", _internal_parent, "e1", ["a.qcow2", "b.qcow2"]),
    ("internal-child", _internal_child, "e1", ["a.e1.qcow2", "a.qcow2",
                                               "b.e1.qcow2", "b.qcow2"]),
]


@pytest.mark.parametrize("build, victim, images", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_delete_keeps_every_other_state(scratch: Scratch, xlsnap, build: Build, victim: str,
                                        images: list[str] | None) -> None:
    build(scratch, xlsnap)
    before = states(scratch)
    assert len(set(before.values())) == len(before)   # all differ: a mix-up would show
    files_before = {p.name: p.stat().st_blocks for p in scratch.images.iterdir()}
    run = xlsnap("snapshot-delete", "web", victim)
    assert run.code == 0, run.err
    assert "bytes freed" in run.out
    after = states(scratch)
    assert after == without(before, victim)
    assert check_clean(scratch) == []
    ledger = ledger_of(scratch)
    assert victim not in ledger.entries and ledger.in_flight is None
    names = sorted(p.name for p in scratch.images.iterdir())
    if images is not None:
        assert names == images
    assert set(names) <= set(files_before)                   # nothing new is left behind
    assert f"snapshotdata-{victim}.libxl-json" not in scratch.snapshot_files()


def test_chain_middle_delete_commits_into_the_base_and_repoints_the_child(
        scratch: Scratch, xlsnap) -> None:
    _chain(scratch, xlsnap)
    assert xlsnap("snapshot-delete", "web", "e2").code == 0
    record = ledger_of(scratch).entries["e3"]["record"]
    a = next(d for d in record["disks"] if d["device"] == "xvda")
    assert a["file"] == str(scratch.images / "a.e1.qcow2")   # e3 now stands on e1's overlay
    assert '"file": "' + str(scratch.images / "a.e3.qcow2") in \
        (scratch.domain_dir / "snapshotdata-e3.libxl-json").read_text()


def test_leaf_delete_puts_the_config_back_on_the_base(scratch: Scratch, xlsnap) -> None:
    _leaf(scratch, xlsnap)
    assert xlsnap("snapshot-delete", "web", "e1").code == 0
    assert current_disks(scratch) == {"xvda": str(scratch.disk_a), "xvdb": str(scratch.disk_b)}
    assert (scratch.config_dir / "web.cfg.before-delete-e1").exists()


def test_internal_parent_keeps_its_tag(scratch: Scratch, xlsnap) -> None:
    _internal_parent(scratch, xlsnap)
    assert xlsnap("snapshot-delete", "web", "e1").code == 0
    assert tags(scratch.disk_a) == ["i1"]


def test_delete_each_in_turn(scratch: Scratch, xlsnap) -> None:
    """A mixed tree with a branch, every snapshot deleted one after the other."""
    _branches(scratch, xlsnap)
    take(scratch, "i4", external=False)
    _write(scratch, 11)
    for victim in ("e2", "i4", "e1", "e3"):
        before = states(scratch)
        run = xlsnap("snapshot-delete", "web", victim)
        assert run.code == 0, (victim, run.err)
        assert states(scratch) == without(before, victim), victim
        assert check_clean(scratch) == [], victim
    assert ledger_of(scratch).entries == {}


def test_revert_to_external_gives_its_content_and_keeps_the_branch(
        scratch: Scratch, xlsnap) -> None:
    _chain(scratch, xlsnap)
    before = states(scratch)
    old_current = current_disks(scratch)
    assert xlsnap("snapshot-revert", "web", "e2").code == 0
    after = states(scratch)
    for dev in ("xvda", "xvdb"):
        assert after[f"current:{dev}"] == before[f"snap:e2:{dev}"]
    assert {k: v for k, v in after.items() if k.startswith("snap:")} == \
        {k: v for k, v in before.items() if k.startswith("snap:")}
    for image in old_current.values():
        assert (scratch.images / image.rsplit("/", 1)[1]).exists()   # the branch stays
    assert ledger_of(scratch).current == "e2"
    assert check_clean(scratch) == []
    assert list(scratch.config_dir.glob("web.cfg.before-revert-*"))
    # the old branch is still reachable: a revert to e3 gives e3's state
    assert xlsnap("snapshot-revert", "web", "e3").code == 0
    assert states(scratch)["current:xvda"] == before["snap:e3:xvda"]


def test_revert_then_write_then_snapshot_then_delete(scratch: Scratch, xlsnap) -> None:
    _chain(scratch, xlsnap)
    assert xlsnap("snapshot-revert", "web", "e1").code == 0
    _write(scratch, 20)
    take(scratch, "e4", external=True)
    _write(scratch, 21)
    assert ledger_of(scratch).entries["e4"]["parent"] == "e1"
    for victim in ("e1", "e4", "e2", "e3"):
        before = states(scratch)
        assert xlsnap("snapshot-delete", "web", victim).code == 0, victim
        assert states(scratch) == without(before, victim), victim
        assert check_clean(scratch) == [], victim


def test_revert_to_internal_under_an_overlay_then_delete_all(scratch: Scratch, xlsnap) -> None:
    _internal_parent(scratch, xlsnap)            # i1 in a.qcow2, e1's overlay on top
    before = states(scratch)
    run = xlsnap("snapshot-revert", "web", "i1")
    assert run.code == 0, run.err
    after = states(scratch)
    for dev in ("xvda", "xvdb"):
        assert after[f"current:{dev}"] == before[f"snap:i1:{dev}"]
    assert {k: v for k, v in after.items() if k.startswith("snap:")} == \
        {k: v for k, v in before.items() if k.startswith("snap:")}
    assert check_clean(scratch) == []
    assert ledger_of(scratch).current == "i1"
    _write(scratch, 30)
    take(scratch, "e2", external=True)           # a snapshot of the new branch
    _write(scratch, 31)
    for victim in ("e1", "i1", "e2"):
        before = states(scratch)
        run = xlsnap("snapshot-delete", "web", victim)
        assert run.code == 0, (victim, run.err)
        assert states(scratch) == without(before, victim), victim
        assert check_clean(scratch) == [], victim
    # what is left is the disk in use, nothing else
    left = sorted(p.name for p in scratch.images.iterdir())
    assert len(left) == 2 and sorted(current_disks(scratch).values()) == \
        sorted(str(scratch.images / n) for n in left)
