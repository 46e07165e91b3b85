"""Deleting an external snapshot of a running QEMU domain is refused (exit 2) with what to
do, and nothing changes: not the images, not the files QEMU has open, not the ledger."""

from __future__ import annotations

import pytest

from tests.live.conftest import LiveDomain

pytestmark = pytest.mark.slow


def test_delete_of_a_running_domains_external_snapshot_says_stop_it(live: LiveDomain) -> None:
    cfg = live.root / "e1.cfg"
    cfg.write_text('name = "e1"\ntype = "external"\n')
    live.write("drv0", 0xaa)
    assert live.xlsnap("snapshot-create", "web", str(cfg)).code == 0
    live.write("drv0", 0xbb)
    files = sorted(p.name for p in live.root.rglob("*.qcow2"))
    tops = live.live_files()
    events = len(live.events())
    run = live.xlsnap("snapshot-delete", "web", "e1")
    assert run.code == 2 and "stop the domain" in run.err and "Traceback" not in run.err
    assert sorted(p.name for p in live.root.rglob("*.qcow2")) == files
    assert live.live_files() == tops and len(live.events()) == events
    assert live.status() == "running"
    e1 = live.record("e1")["disks"][0]
    assert e1["file"] == str(live.disks[0])
