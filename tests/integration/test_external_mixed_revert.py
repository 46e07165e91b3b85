"""Reverting a stopped domain to a snapshot that mixes an external and an internal disk:
the external disk gets a fresh overlay on its base, the internal one is reverted in place
(safety tag, apply, safety tag removed); every other state stays, byte for byte."""

from __future__ import annotations

import pytest

from tests.conftest import Scratch, tags, write_pattern
from tests.disk_states import check_clean, current_disks, ledger_of, states

K = 65536


def _write(scratch: Scratch, byte: int) -> None:
    for shift, image in enumerate(current_disks(scratch).values()):
        write_pattern(image, byte + 100 * shift, offset=byte * K)


def _mixed(scratch: Scratch, xlsnap, name: str) -> None:
    cfg = scratch.root / f"{name}.snap.cfg"
    cfg.write_text(f'name = "{name}"\ndisk = [ "xvda,type=external", "xvdb,type=internal" ]\n')
    run = xlsnap("snapshot-create", "web", str(cfg))
    assert run.code == 0, run.err


def test_revert_to_a_mixed_snapshot_gives_its_state_and_keeps_every_other(
        scratch: Scratch, xlsnap) -> None:
    _write(scratch, 1)
    _mixed(scratch, xlsnap, "m1")
    _write(scratch, 2)
    assert xlsnap("snapshot-create", "-n", "i2", "web").code == 0
    _write(scratch, 3)
    before = states(scratch)
    left = current_disks(scratch)["xvda"]
    run = xlsnap("snapshot-revert", "web", "m1")
    assert run.code == 0, run.err
    after = states(scratch)
    assert {k: v for k, v in after.items() if k.startswith("snap:")} == \
        {k: v for k, v in before.items() if k.startswith("snap:")}
    assert after["current:xvda"] == before["snap:m1:xvda"]
    assert after["current:xvdb"] == before["snap:m1:xvdb"]
    assert current_disks(scratch)["xvda"] != left               # a fresh overlay on m1's base
    assert check_clean(scratch) == []
    assert sorted(tags(str(scratch.disk_b))) == ["i2", "m1"]      # no safety tag left
    m1 = ledger_of(scratch).entries["m1"]["record"]
    assert [len(d.get("branches", [])) for d in m1["disks"]] == [1, 0]


@pytest.mark.parametrize("fault", ["fail:1:intent", "fail:2:intent", "fail:3:intent",
                                   "fail:4:intent"])
def test_a_failed_mixed_revert_changes_nothing(scratch: Scratch, xlsnap, fault: str) -> None:
    _write(scratch, 1)
    _mixed(scratch, xlsnap, "m1")
    _write(scratch, 2)
    before, files = states(scratch), sorted(p.name for p in scratch.images.iterdir())
    run = xlsnap("snapshot-revert", "web", "m1", env={**scratch.env(),
                                                      "XLSNAP_FAULT_INJECT": fault})
    assert run.code == 1 and "Traceback" not in run.err, run.err
    assert states(scratch) == before
    assert sorted(p.name for p in scratch.images.iterdir()) == files
    assert sorted(tags(str(scratch.disk_b))) == ["m1"]
    assert check_clean(scratch) == []
