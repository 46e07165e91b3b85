"""``snapshot-delete --children`` / ``--children-only`` / ``--metadata`` on external
snapshots, and the bad inputs an external delete refuses (exit 2, nothing changed)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import Scratch, mounted_tmpfs, qemu_img, write_pattern
from tests.disk_states import check_clean, ledger_of, states, take, without
from tests.integration.test_external_delete import _branches, _chain, _write


def _snapshot_of_everything(scratch: Scratch) -> tuple[dict[str, str], list[str], bytes]:
    """What must not change when a command is refused: states, files, the config."""
    files = sorted(str(p) for p in scratch.images.rglob("*")) + scratch.snapshot_files()
    return states(scratch), files, scratch.config.read_bytes()


def test_children_only_deletes_the_subtree_and_keeps_the_snapshot(scratch: Scratch,
                                                                   xlsnap) -> None:
    _chain(scratch, xlsnap)
    before = states(scratch)
    run = xlsnap("snapshot-delete", "--children-only", "web", "e1")
    assert run.code == 0, run.err
    assert "e3, e2" in run.out and "bytes freed" in run.out
    assert set(ledger_of(scratch).entries) == {"e1"}
    after = states(scratch)
    assert after == without(without(before, "e2"), "e3")
    assert check_clean(scratch) == []


def test_children_deletes_a_branching_subtree_with_the_snapshot(scratch: Scratch,
                                                                xlsnap) -> None:
    _branches(scratch, xlsnap)
    take(scratch, "i5", external=False)
    _write(scratch, 12)
    before = states(scratch)
    run = xlsnap("snapshot-delete", "--children", "web", "e1")
    assert run.code == 0, run.err
    assert ledger_of(scratch).entries == {}
    assert states(scratch) == {k: v for k, v in before.items() if k.startswith("current:")}
    assert check_clean(scratch) == []
    assert sorted(p.name for p in scratch.images.iterdir()) == ["a.qcow2", "b.qcow2"]


def test_children_refuses_before_any_delete_when_one_is_held(scratch: Scratch,
                                                             xlsnap) -> None:
    _chain(scratch, xlsnap)
    assert xlsnap("snapshot-hold", "web", "e3", "keep").code == 0
    kept = _snapshot_of_everything(scratch)
    run = xlsnap("snapshot-delete", "--children", "web", "e1")
    assert run.code == 2 and "e3" in run.err
    assert _snapshot_of_everything(scratch) == kept


def test_metadata_forgets_an_external_snapshot_and_keeps_its_files(scratch: Scratch,
                                                                   xlsnap) -> None:
    _chain(scratch, xlsnap)
    files = sorted(p.name for p in scratch.images.iterdir())
    before = states(scratch)
    run = xlsnap("snapshot-delete", "--metadata", "web", "e2")
    assert run.code == 0, run.err
    assert sorted(p.name for p in scratch.images.iterdir()) == files
    assert states(scratch) == without(before, "e2")
    assert "e2" not in ledger_of(scratch).entries


def test_a_chain_edited_by_hand_is_refused_unless_forced(scratch: Scratch, xlsnap) -> None:
    _chain(scratch, xlsnap)
    overlay = scratch.images / "a.e2.qcow2"
    copy = scratch.images / "copy.qcow2"
    qemu_img("convert", "-O", "qcow2", str(scratch.images / "a.e1.qcow2"), str(copy))
    qemu_img("rebase", "-u", "-F", "qcow2", "-b", str(copy), str(overlay))
    kept = _snapshot_of_everything(scratch)
    run = xlsnap("snapshot-delete", "web", "e2")
    assert run.code == 2 and str(overlay) in run.err and "--force" in run.err
    assert run.err.count("\n") == 1 and "Traceback" not in run.err
    assert _snapshot_of_everything(scratch) == kept
    run = xlsnap("snapshot-delete", "--force", "web", "e2")
    assert run.code == 0, run.err
    assert overlay.exists()                      # the edited disk's files are left alone
    history = xlsnap("history", "--json", "web").out
    assert '"forced"' in history and str(overlay) in history


def test_a_base_another_domain_stands_on_is_refused(scratch: Scratch, xlsnap) -> None:
    _chain(scratch, xlsnap)
    clone = scratch.images / "clone.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-F", "qcow2", "-b",
             str(scratch.images / "a.e1.qcow2"), str(clone))
    (scratch.config_dir / "db.cfg").write_text(
        f'name = "db"\ndisk = ["{clone},qcow2,xvda,rw"]\n')
    kept = _snapshot_of_everything(scratch)
    run = xlsnap("snapshot-delete", "web", "e2")   # would commit a.e2 into a.e1
    assert run.code == 2 and "'db'" in run.err and "a.e1.qcow2" in run.err
    assert _snapshot_of_everything(scratch) == kept


def test_read_only_storage_is_refused(scratch: Scratch, xlsnap) -> None:
    with mounted_tmpfs(scratch.root / "ro", "64M") as mount:
        _move_disks(scratch, mount)
        _chain(scratch, xlsnap)
        kept = _snapshot_of_everything(scratch)
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True, timeout=30)
        try:
            run = xlsnap("snapshot-delete", "web", "e2")
            assert run.code == 2 and "read-only storage" in run.err, run.err
            assert _snapshot_of_everything(scratch) == kept
        finally:
            subprocess.run(["mount", "-o", "remount,rw", str(mount)], check=True, timeout=30)


def test_too_little_space_is_refused_with_the_figure(scratch: Scratch, xlsnap) -> None:
    with mounted_tmpfs(scratch.root / "small", "40M") as mount:
        _move_disks(scratch, mount)
        take(scratch, "e1", external=True)
        for image in (mount / "a.e1.qcow2", mount / "b.e1.qcow2"):
            write_pattern(image, 0x5A, 0, 14 * 1024 * 1024)   # 28 MiB in the overlays
        kept = _snapshot_of_everything(scratch)
        run = xlsnap("snapshot-delete", "web", "e1")            # each commit needs 14 MiB
        assert run.code == 2 and "bytes" in run.err and "free" in run.err, run.err
        assert _snapshot_of_everything(scratch) == kept


def _move_disks(scratch: Scratch, mount: Path) -> None:
    """Put the scratch domain's disks on ``mount``."""
    for disk in (scratch.disk_a, scratch.disk_b):
        qemu_img("create", "-q", "-f", "qcow2", str(mount / disk.name), "16M")
    scratch.images = mount
    scratch.write_config([f"{scratch.disk_a},qcow2,xvda,rw", f"{scratch.disk_b},qcow2,xvdb,rw"])
