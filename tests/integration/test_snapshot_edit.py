"""snapshot-edit: a rename renames tags, memory image and metadata; nothing is lost."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tests.conftest import Run, Scratch, read_pattern, tags, write_pattern
from tests.e2e.test_bad_input import event_count

Xlsnap = Callable[..., Run]


@pytest.fixture
def three(scratch: Scratch, xlsnap: Xlsnap) -> Scratch:
    """s1 (0x11/0x21) -> s2 (0x12/0x22) -> s3; the disks now hold 0x13/0x23."""
    for k in (1, 2, 3):
        write_pattern(scratch.disk_a, 0x10 + k)
        write_pattern(scratch.disk_b, 0x20 + k)
        if k < 3:
            assert xlsnap("snapshot-create", "-n", f"s{k}", "web").code == 0
    return scratch


def contents_hold(s: Scratch, xlsnap: Xlsnap, names: dict[str, int]) -> None:
    """Each named snapshot reverts to its own patterns; the disks end where they were."""
    now_a, now_b = (read_pattern(s.disk_a, 0x13), read_pattern(s.disk_b, 0x23))
    assert now_a and now_b
    for name, k in names.items():
        assert xlsnap("snapshot-revert", "web", name).code == 0
        assert read_pattern(s.disk_a, 0x10 + k) and read_pattern(s.disk_b, 0x20 + k)


def test_rename_keeps_every_byte_and_both_names_in_history(three: Scratch,
                                                           xlsnap: Xlsnap) -> None:
    run = xlsnap("snapshot-edit", "web", "s1", "--rename", "base", "--description", "first")
    assert run.code == 0, run.err
    assert read_pattern(three.disk_a, 0x13) and read_pattern(three.disk_b, 0x23)  # untouched
    assert tags(three.disk_a) == ["s2", "base"] and tags(three.disk_b) == ["s2", "base"]
    assert xlsnap("snapshot-parent", "web", "s2").out == "base\n"
    info = json.loads(xlsnap("snapshot-info", "--json", "web", "base").out)
    assert info["description"] == "first"
    assert sorted(p.name for p in three.domain_dir.glob("snapshotdata-*")) == [
        "snapshotdata-base.libxl-json", "snapshotdata-s2.libxl-json"]
    assert xlsnap("check", "web").code == 0
    history = xlsnap("history", "--kind", "edit", "web").out
    assert "renamed s1 -> base" in history
    events = json.loads(xlsnap("history", "--json", "web").out)
    edit_at = next(e["position"] for e in events
                   if e["event"] == "OperationStarted" and e["data"]["kind"] == "edit")
    diff = json.loads(xlsnap("diff", "web", "--from-event", str(edit_at - 1), "--json").out)
    assert any(c["change"] == "renamed" and c["old_name"] == "s1" for c in diff["changes"])
    assert xlsnap("projections", "rebuild").code == 0
    assert xlsnap("snapshot-parent", "web", "s2").out == "base\n"
    contents_hold(three, xlsnap, {"base": 1, "s2": 2})


@pytest.mark.parametrize("step", [2, 3, 5, 7])
def test_a_failed_rename_is_undone_with_nothing_changed(three: Scratch, xlsnap: Xlsnap,
                                                        step: int) -> None:
    env = {**three.env(), "XLSNAP_FAULT_INJECT": f"fail:{step}:intent"}
    run = xlsnap("snapshot-edit", "web", "s1", "--rename", "base", env=env)
    assert run.code == 1 and "nothing changed" in run.err, run.err
    assert tags(three.disk_a) == ["s1", "s2"] and tags(three.disk_b) == ["s1", "s2"]
    assert read_pattern(three.disk_a, 0x13) and read_pattern(three.disk_b, 0x23)
    assert xlsnap("check", "web").code == 0
    contents_hold(three, xlsnap, {"s1": 1, "s2": 2})


@pytest.mark.parametrize("step", [2, 4, 6, 9, 11])
def test_a_killed_rename_is_recovered_with_every_byte(three: Scratch, xlsnap: Xlsnap,
                                                      step: int) -> None:
    env = {**three.env(), "XLSNAP_FAULT_INJECT": f"kill:{step}:effect"}
    run = xlsnap("snapshot-edit", "web", "s1", "--rename", "base", env=env)
    assert run.code == -9
    assert xlsnap("recover", "web").code == 0
    assert xlsnap("check", "web").code == 0
    names = set(xlsnap("snapshot-list", "--name", "web").out.split())
    first = "base" if "base" in names else "s1"
    assert names == {first, "s2"}
    assert sorted(tags(three.disk_a)) == sorted([first, "s2"])
    assert read_pattern(three.disk_a, 0x13) and read_pattern(three.disk_b, 0x23)
    contents_hold(three, xlsnap, {first: 1, "s2": 2})


@pytest.mark.sqlite_only
def test_renames_that_cannot_be_are_refused_with_nothing_changed(three: Scratch,
                                                                 xlsnap: Xlsnap) -> None:
    before = event_count(three.ledger)
    for args, words in [(("--rename", "s2"), "already has a snapshot named 's2'"),
                        (("--rename", "bad/name"), "path separator"),
                        ((), "nothing to edit")]:
        run = xlsnap("snapshot-edit", "web", "s1", *args)
        assert run.code == 2 and words in run.err, run.err
    assert xlsnap("snapshot-hold", "web", "s1", "keep").code == 0
    held = xlsnap("snapshot-edit", "web", "s1", "--rename", "base")
    assert held.code == 2 and "held (keep)" in held.err
    assert event_count(three.ledger) > before          # only the hold was recorded
    assert tags(three.disk_a) == ["s1", "s2"]


def test_a_rename_under_an_overlay_is_refused_and_the_chain_is_untouched(
        three: Scratch, xlsnap: Xlsnap) -> None:
    cfg = three.root / "ext.cfg"
    cfg.write_text('name = "e1"\ntype = "external"\n')
    assert xlsnap("snapshot-create", "web", str(cfg)).code == 0
    before = event_count(three.ledger)
    mtime = three.disk_a.stat().st_mtime_ns
    run = xlsnap("snapshot-edit", "web", "s1", "--rename", "base")
    assert run.code == 2 and "has an overlay on top" in run.err, run.err
    assert event_count(three.ledger) == before
    assert three.disk_a.stat().st_mtime_ns == mtime and tags(three.disk_a) == ["s1", "s2"]
    assert read_pattern(three.images / "a.e1.qcow2", 0x13)     # the guest's view is as it was
    assert xlsnap("check", "web").code == 0
