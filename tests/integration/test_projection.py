"""The read model is current after each command and rebuilds to the same rows."""

from __future__ import annotations

from tests.conftest import Scratch


def test_rebuild_from_the_log_gives_the_same_trees(scratch: Scratch, xlsnap) -> None:
    for args in (["-n", "s1"], ["-n", "s2"], ["-n", "s3"]):
        assert xlsnap("snapshot-create", *args, "web").code == 0
    assert xlsnap("snapshot-revert", "-n", "s1", "web").code == 0
    assert xlsnap("snapshot-create", "-n", "s4", "web").code == 0
    assert xlsnap("snapshot-delete", "-n", "s2", "web").code == 0
    svc = scratch.services()
    try:
        incremental = svc.view.dump()
        count = svc.view.rebuild()
        assert count == svc.app.max_position()
        assert svc.view.dump() == incremental
        assert svc.view.catch_up() == 0  # exactly once: nothing applied twice
    finally:
        svc.close()
    assert "Projected" in xlsnap("projections", "rebuild").out


def test_metadata_files_are_regenerated_from_the_ledger(scratch: Scratch, xlsnap) -> None:
    assert xlsnap("snapshot-create", "-n", "s1", "web").code == 0
    meta = scratch.domain_dir / "snapshotdata-s1.libxl-json"
    original = meta.read_text()
    meta.unlink()
    run = xlsnap("projections", "metadata", "web")
    assert run.code == 0 and meta.read_text() == original
