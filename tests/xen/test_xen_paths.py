"""``xl save`` to a memory path in a folder xlsnap did not create (fake xl, real QEMU)."""

from __future__ import annotations

import os
import stat

import pytest

from tests.xen.conftest import XenHost

pytestmark = pytest.mark.slow


def test_xl_saves_into_a_sticky_shared_folder_without_it_being_re_moded(
        xen_host: XenHost) -> None:
    shared = xen_host.root / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    memory = shared / "m.save"
    cfg = xen_host.root / "m.cfg"
    cfg.write_text(f'name = "m1"\nmemory = "{memory}"\n')
    run = xen_host.xlsnap("snapshot-create", "web", str(cfg))
    assert run.code == 0, run.err
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777
    assert stat.S_IMODE(memory.stat().st_mode) == 0o600 and memory.stat().st_uid == 0
    assert memory.read_bytes().startswith(b"Xen saved domain, xl format")
    assert xen_host.mutating_calls() == [["save", "-p", "web", str(memory)], ["unpause", "web"]]
    assert xen_host.record("m1")["memory_file"] == str(memory)


def test_a_group_writable_memory_folder_is_refused_before_xl_runs(xen_host: XenHost) -> None:
    group = xen_host.root / "group"
    group.mkdir()
    os.chmod(group, 0o2775)
    cfg = xen_host.root / "m.cfg"
    cfg.write_text(f'name = "m1"\nmemory = "{group}/m.save"\n')
    run = xen_host.xlsnap("snapshot-create", "web", str(cfg))
    assert run.code == 2 and f"{group} (mode 2775" in run.err, run.err
    assert stat.S_IMODE(group.stat().st_mode) == 0o2775 and list(group.iterdir()) == []
    assert xen_host.mutating_calls() == []
    assert xen_host.vm is not None
    assert all(d.snapshots == () for d in xen_host.vm.qmp().query_block())
