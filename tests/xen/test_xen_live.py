"""The xen adapter against the fake xl and a real device model: call sequences, failure paths.

Each test runs the real CLI (``--toolstack xen`` through the environment) and asserts the
xl calls (the fake's log), the steps recorded in the ledger (xl argv and QMP commands, in
order), the disks as the device model sees them, and that the domain is running again
after every failure.
"""

from __future__ import annotations

import hashlib
import json
import stat
import subprocess

import pytest

from tests.conftest import read_pattern, tags
from tests.xen.conftest import DOMID, NODES, XenHost

pytestmark = pytest.mark.slow
FAILING_QEMU_IMG = "tests/fakes/failing_qemu_img.py"


def qmp_tags(host: XenHost) -> dict[str, tuple[str, ...]]:
    """Tags per qdisk node, as the device model sees them."""
    assert host.vm is not None
    return {d.node_name: d.snapshots for d in host.vm.qmp().query_block()
            if d.node_name in NODES}


def assert_running(host: XenHost) -> None:
    dom = host.domain()
    assert dom["state"] == "running" and dom.get("pause_count", 0) == 0, dom


def test_domain_snapshot_is_save_p_then_one_transaction_then_unpause(xen_host: XenHost) -> None:
    run = xen_host.xlsnap("--verbose", "snapshot-create", "-n", "s1", "web")
    assert run.code == 0, run.err
    assert "with memory (xen, domain was running)" in run.out
    assert "toolstack xen (chosen): Xen domain id 5, running" in run.err
    memory = xen_host.domain_dir / "s1.save"
    assert xen_host.mutating_calls() == [["save", "-p", "web", str(memory)], ["unpause", "web"]]
    steps = xen_host.steps()
    assert [s[:2] for s in steps] == [["do", "memory-save"], ["do", "live-internal-snapshot"],
                                      ["do", "domain-unpause"], ["do", "metadata-write"]]
    assert steps[0][2:] == ["xl", "save", "-p", "web", str(memory)]
    assert steps[1][2:5] == ["qmp", str(xen_host.qmp_dir / f"qmp-libxl-{DOMID}"), "transaction"]
    assert json.loads(steps[1][5])["actions"] == [
        {"type": "blockdev-snapshot-internal-sync", "data": {"device": "xvda-qcow2", "name": "s1"}},
        {"type": "blockdev-snapshot-internal-sync", "data": {"device": "xvdb-qcow2", "name": "s1"}}]
    assert steps[2][2:] == ["xl", "unpause", "web"]
    assert qmp_tags(xen_host) == {"xvda-qcow2": ("s1",), "xvdb-qcow2": ("s1",)}
    assert_running(xen_host)
    assert stat.S_IMODE(memory.stat().st_mode) == 0o600
    assert stat.S_IMODE(memory.parent.stat().st_mode) == 0o700
    assert memory.read_bytes().startswith(b"Xen saved domain, xl format")
    record = xen_host.record("s1")
    assert record["memory"] == "yes" and record["toolstack"] == "xen"
    assert record["state"] == "running" and record["crash_consistent"] is False
    assert record["memory_file"] == str(memory) and record["memory_size"] == memory.stat().st_size
    assert record["memory_sha256"] == hashlib.sha256(memory.read_bytes()).hexdigest()
    assert xen_host.xlsnap("check", "web").code == 0


def test_disk_only_snapshot_does_not_pause(xen_host: XenHost) -> None:
    run = xen_host.xlsnap("snapshot-create", "--disk-only", "-n", "d1", "web")
    assert run.code == 0, run.err
    assert "crash-consistent" in run.out
    assert xen_host.mutating_calls() == []
    assert [s[1] for s in xen_host.steps()] == ["live-internal-snapshot", "metadata-write"]
    assert xen_host.record("d1")["crash_consistent"] is True
    assert xen_host.record("d1")["memory"] == "no"
    assert list(xen_host.domain_dir.glob("*.save")) == []
    assert qmp_tags(xen_host) == {"xvda-qcow2": ("d1",), "xvdb-qcow2": ("d1",)}


def test_revert_of_a_disk_only_snapshot_of_a_running_xen_domain_says_what_to_do(
        xen_host: XenHost) -> None:
    # Xen's external snapshots are all of this kind: taken while the domain was stopped
    assert xen_host.xlsnap("snapshot-create", "--disk-only", "-n", "d1", "web").code == 0
    events = len(xen_host.events())
    run = xen_host.xlsnap("snapshot-revert", "-n", "d1", "web")
    assert run.code == 2 and len(run.err.strip().splitlines()) == 1, run.err
    assert "xl shutdown web" in run.err and "--toolstack offline" in run.err
    assert xen_host.mutating_calls() == [] and len(xen_host.events()) == events
    assert_running(xen_host)
    assert qmp_tags(xen_host) == {"xvda-qcow2": ("d1",), "xvdb-qcow2": ("d1",)}


def test_revert_plan_of_an_external_disk_on_xen_says_what_to_do() -> None:
    from commands.errors import UsageError
    from commands.handlers.revert_xen import xen_plan
    from commands.toolstacks.base import Live

    record = {"name": "e1", "memory": "yes", "memory_file": "/srv/e1.save",
              "disks": [{"device": "xvda", "type": "external", "file": "/srv/a.qcow2",
                         "path": "/srv/a.e1.qcow2"}]}
    live = Live("xen", "running", "/run/xen/qmp-libxl-5", domid=5)
    with pytest.raises(UsageError) as refused:
        xen_plan("e1", record, "web", live, "running", "s", "/srv/s.save", None)  # type: ignore[arg-type]
    assert "xl shutdown web" in str(refused.value) and "xl create" in str(refused.value)


def test_failed_save_leaves_the_domain_running_and_nothing_behind(xen_host: XenHost) -> None:
    run = xen_host.xlsnap("snapshot-create", "-n", "s1", "web", XLSNAP_FAKE_XL_FAIL="save")
    assert run.code == 1 and "memory-save" in run.err and "nothing changed" in run.err
    assert len(run.err.strip().splitlines()) == 1
    assert_running(xen_host)
    assert list(xen_host.home.rglob("*.save")) == []
    assert qmp_tags(xen_host) == {"xvda-qcow2": (), "xvdb-qcow2": ()}
    assert xen_host.last_outcome() == "compensated"


@pytest.mark.parametrize("step, undone", [
    (2, ["memory-save"]),                                     # the transaction
    (3, ["live-internal-snapshot", "memory-save"]),           # the unpause
    (4, ["domain-unpause", "live-internal-snapshot", "memory-save"]),  # the metadata
])
def test_a_failing_step_is_undone_and_the_domain_unpaused(xen_host: XenHost, step: int,
                                                          undone: list[str]) -> None:
    run = xen_host.xlsnap("snapshot-create", "-n", "s1", "web",
                          XLSNAP_FAULT_INJECT=f"fail:{step}:intent")
    assert run.code == 1, run.err
    assert [s[1] for s in xen_host.steps() if s[0] == "undo"] == undone
    assert_running(xen_host)
    assert xen_host.mutating_calls()[0][:2] == ["save", "-p"]
    assert xen_host.mutating_calls().count(["unpause", "web"]) == 1
    assert list(xen_host.home.rglob("*.save")) == []
    assert qmp_tags(xen_host) == {"xvda-qcow2": (), "xvdb-qcow2": ()}
    assert xen_host.last_outcome() == "compensated"
    assert xen_host.xlsnap("snapshot-list", "--json", "web").out.strip() == "[]"


def test_a_failing_unpause_stays_in_flight_and_recover_unpauses(xen_host: XenHost) -> None:
    run = xen_host.xlsnap("snapshot-create", "-n", "s1", "web", XLSNAP_FAKE_XL_FAIL="unpause")
    assert run.code == 3 and "xlsnap recover web" in run.err  # the undo failed too
    assert xen_host.domain()["state"] == "paused"       # xl itself cannot unpause it
    blocked = xen_host.xlsnap("snapshot-create", "-n", "s2", "web")
    assert blocked.code == 3 and "in flight" in blocked.err
    recovered = xen_host.xlsnap("recover", "web")
    assert recovered.code == 0, recovered.err
    assert_running(xen_host)
    assert list(xen_host.home.rglob("*.save")) == []
    assert qmp_tags(xen_host) == {"xvda-qcow2": (), "xvdb-qcow2": ()}
    assert xen_host.xlsnap("check", "web").code == 0


@pytest.mark.parametrize("point", ["intent", "effect", "outcome"])
@pytest.mark.parametrize("step", [1, 2, 3, 4])
def test_killed_create_is_recovered_unpaused_with_nothing_orphaned(
        xen_host: XenHost, step: int, point: str) -> None:
    run = xen_host.xlsnap("snapshot-create", "-n", "s1", "web",
                          XLSNAP_FAULT_INJECT=f"kill:{step}:{point}")
    assert run.code == -9, run.err
    recovered = xen_host.xlsnap("recover", "web")
    assert recovered.code == 0, recovered.err
    assert_running(xen_host)
    names = json.loads(xen_host.xlsnap("snapshot-list", "--json", "web").out)
    taken = [r["name"] for r in names]
    saves = sorted(p.name for p in xen_host.home.rglob("*.save"))
    if taken:  # rolled forward: everything is there
        assert taken == ["s1"] and saves == ["s1.save"]
        assert qmp_tags(xen_host) == {"xvda-qcow2": ("s1",), "xvdb-qcow2": ("s1",)}
    else:
        assert saves == [] and qmp_tags(xen_host) == {"xvda-qcow2": (), "xvdb-qcow2": ()}
    assert xen_host.xlsnap("check", "web").code == 0
    assert xen_host.xlsnap("recover", "web").out.strip() == "web: nothing in flight"


def _snapshot_then_change(host: XenHost) -> str:
    """s1 of the running domain, then its disk and RAM change. The device model keeps
    running: the revert's ``xl destroy`` ends it (a moment later, as with libxl)."""
    assert host.vm is not None
    host.vm.qemu_io("xvda-qcow2", "write -P 0x11 0 64k")
    assert host.xlsnap("snapshot-create", "-n", "s1", "web").code == 0
    token = host.domain()["memory_image"]
    host.vm.qemu_io("xvda-qcow2", "write -P 0x22 0 64k")
    host.fake.set_memory("web", "changed-after-s1")
    return token


def test_revert_destroys_reverts_disks_restores_and_unpauses(xen_host: XenHost) -> None:
    token = _snapshot_then_change(xen_host)
    before = len(xen_host.calls())
    run = xen_host.xlsnap("snapshot-revert", "-n", "s1", "web")
    assert run.code == 0, run.err
    memory = xen_host.domain_dir / "s1.save"
    calls = [c for c in xen_host.calls()[before:] if c[0] not in ("list", "domid", "domname")]
    assert [c[:2] for c in calls] == [["save", "-p"], ["destroy", str(DOMID)],
                                      ["restore", "-p"], ["unpause", "web"]]
    assert calls[2] == ["restore", "-p", str(memory)]
    dom = xen_host.domain()
    assert dom["domid"] != DOMID and dom["memory_image"] == token   # memory as at s1
    assert_running(xen_host)
    assert read_pattern(xen_host.disks[0], 0x11)                    # disk as at s1
    assert tags(xen_host.disks[0]) == ["s1"] and tags(xen_host.disks[1]) == ["s1"]
    assert sorted(p.name for p in xen_host.domain_dir.glob("*.save")) == ["s1.save"]


def test_revert_paused_leaves_the_restored_domain_paused(xen_host: XenHost) -> None:
    _snapshot_then_change(xen_host)
    run = xen_host.xlsnap("snapshot-revert", "--paused", "-n", "s1", "web")
    assert run.code == 0, run.err
    assert xen_host.domain()["state"] == "paused"
    assert ["unpause", "web"] not in xen_host.calls()[-3:]


def test_revert_failing_on_a_disk_puts_the_domain_back_as_it_was(xen_host: XenHost) -> None:
    _snapshot_then_change(xen_host)
    env = {"XLSNAP_QEMU_IMG": FAILING_QEMU_IMG,
           "XLSNAP_TEST_FAIL": json.dumps([["snapshot -a", str(xen_host.disks[1])]])}
    run = xen_host.xlsnap("snapshot-revert", "-n", "s1", "web", **env)
    assert run.code == 1 and "nothing changed" in run.err, run.err
    dom = xen_host.domain()
    assert dom["memory_image"] == "changed-after-s1"        # the safety image came back
    assert_running(xen_host)
    assert read_pattern(xen_host.disks[0], 0x22)            # disk a put back
    assert tags(xen_host.disks[0]) == ["s1"] and tags(xen_host.disks[1]) == ["s1"]
    assert sorted(p.name for p in xen_host.domain_dir.glob("*.save")) == ["s1.save"]
    assert xen_host.last_outcome() == "compensated"


def test_revert_failing_restore_brings_back_the_domain(xen_host: XenHost) -> None:
    _snapshot_then_change(xen_host)
    run = xen_host.xlsnap("snapshot-revert", "-n", "s1", "web",
                          XLSNAP_FAKE_XL_FAIL="restore")
    assert "domain-restore" in run.err
    # the undo restores the safety image: xl restore fails for that too, so the
    # operation stays in flight for recover, which retries once the fault is gone
    if xen_host.fake.domain("web") is None:
        assert run.code == 3 and "xlsnap recover web" in run.err  # the undo failed too
        assert xen_host.xlsnap("recover", "web").code == 0
    else:
        assert run.code == 1
    assert xen_host.domain()["memory_image"] == "changed-after-s1"
    assert_running(xen_host)
    assert read_pattern(xen_host.disks[0], 0x22)


def test_revert_refuses_an_altered_memory_image_unless_forced(xen_host: XenHost) -> None:
    _snapshot_then_change(xen_host)
    memory = xen_host.domain_dir / "s1.save"
    with memory.open("ab") as handle:
        handle.write(b"tampered")
    before = len(xen_host.events())
    run = xen_host.xlsnap("snapshot-revert", "-n", "s1", "web")
    assert run.code == 3 and "does not match the ledger" in run.err
    assert len(run.err.strip().splitlines()) == 1
    assert len(xen_host.events()) == before and xen_host.domain()["domid"] == DOMID
    forced = xen_host.xlsnap("snapshot-revert", "--force", "-n", "s1", "web")
    assert forced.code == 0, forced.err
    started = [e for e in xen_host.events() if type(e).__name__ == "OperationStarted"][-1]
    assert started.details["forced"] is True
    finished = [e for e in xen_host.events() if type(e).__name__ == "OperationFinished"][-1]
    assert "--force" in finished.message


def test_delete_removes_live_tags_through_qmp_and_the_memory_image(xen_host: XenHost) -> None:
    assert xen_host.xlsnap("snapshot-create", "-n", "s1", "web").code == 0
    run = xen_host.xlsnap("snapshot-delete", "-n", "s1", "web")
    assert run.code == 0, run.err
    assert [s[1] for s in xen_host.steps()] == ["live-tag-delete", "live-tag-delete",
                                                "memory-remove", "metadata-remove"]
    assert qmp_tags(xen_host) == {"xvda-qcow2": (), "xvdb-qcow2": ()}
    assert list(xen_host.domain_dir.iterdir()) == []


def test_no_hypervisor_is_said_in_one_line(xen_host: XenHost) -> None:
    run = xen_host.xlsnap("snapshot-create", "-n", "s1", "web", XLSNAP_FAKE_XL_NO_HYPERVISOR="1")
    assert run.code == 2
    assert run.err.strip().splitlines() == [
        "xlsnap: error: unknown domain 'web' for toolstack xen: no Xen hypervisor is running "
        "on this host (xl: Can't find hypervisor information in sysfs!)"]
    auto = xen_host.xlsnap("snapshot-create", "-n", "s1", "web", XLSNAP_TOOLSTACK="auto",
                           XLSNAP_FAKE_XL_NO_HYPERVISOR="1")
    assert auto.code == 2 and len(auto.err.strip().splitlines()) == 1
    assert "no config file" in auto.err and "no Xen hypervisor is running" in auto.err
    assert not xen_host.home.exists()


def test_sxp_output_is_refused(xen_host: XenHost) -> None:
    xen_host.fake.set_output_format("sxp")
    run = xen_host.xlsnap("snapshot-create", "-n", "s1", "web")
    assert run.code == 2 and "SXP" in run.err and len(run.err.strip().splitlines()) == 1
    assert xen_host.mutating_calls() == []


def test_external_snapshot_of_a_running_xen_domain_is_refused(xen_host: XenHost) -> None:
    cfg = xen_host.root / "ext.cfg"
    cfg.write_text('type = "external"\n')
    run = xen_host.xlsnap("snapshot-create", "-n", "e1", "web", str(cfg))
    assert run.code == 2 and "not supported" in run.err
    assert xen_host.mutating_calls() == [] and xen_host.events() == []


def test_auto_picks_xen_and_records_it(xen_host: XenHost) -> None:
    run = xen_host.xlsnap("-v", "snapshot-create", "-n", "s1", "web", XLSNAP_TOOLSTACK="auto")
    assert run.code == 0, run.err
    assert "toolstack xen (auto)" in run.err
    assert xen_host.record("s1")["toolstack"] == "xen"


def test_qmp_socket_of_the_device_model_is_by_domid(xen_host: XenHost) -> None:
    (xen_host.qmp_dir / f"qmp-libxl-{DOMID}").unlink()
    run = xen_host.xlsnap("snapshot-create", "-n", "s1", "web")
    assert run.code == 2 and f"qmp-libxl-{DOMID}" in run.err
    assert xen_host.mutating_calls() == []


def test_snapshot_of_a_paused_domain_leaves_it_paused(xen_hvm_host: XenHost) -> None:
    xen_host = xen_hvm_host  # an HVM guest is suspended without its help
    before = len(xen_host.calls())
    subprocess.run([xen_host.fake.binary, "pause", "web"], env=xen_host.env(), check=True)
    run = xen_host.xlsnap("snapshot-create", "-n", "p1", "web")
    assert run.code == 0, run.err
    dom = xen_host.domain()
    assert dom["state"] == "paused" and dom["pause_count"] == 1     # the admin's pause only
    calls = [c for c in xen_host.calls()[before:] if c[0] in ("save", "unpause", "pause")]
    assert [c[0] for c in calls] == ["pause", "save", "unpause"]
    assert xen_host.record("p1")["state"] == "paused"


def test_revert_state_options_are_refused_for_a_stopped_domain(xen_host: XenHost) -> None:
    cfg = xen_host.config_dir / "db.cfg"
    disk = xen_host.root / "db.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "16M"], check=True)
    cfg.write_text(f'name = "db"\ndisk = [ "{disk},qcow2,xvda,rw" ]\n')
    assert xen_host.xlsnap("snapshot-create", "-n", "s1", "db", XLSNAP_TOOLSTACK="auto").code == 0
    run = xen_host.xlsnap("snapshot-revert", "--running", "-n", "s1", "db",
                          XLSNAP_TOOLSTACK="auto")
    assert run.code == 2 and "--running applies to a running domain" in run.err


REVERT_STEPS = 11   # save, destroy, 2 safety tags, 2 applies, restore, unpause, 2 tag
                    # deletes, safety image removal


@pytest.mark.parametrize("step", range(1, REVERT_STEPS + 1))
def test_killed_revert_is_recovered_to_one_state_or_the_other(xen_host: XenHost,
                                                             step: int) -> None:
    token = _snapshot_then_change(xen_host)
    run = xen_host.xlsnap("snapshot-revert", "-n", "s1", "web",
                          XLSNAP_FAULT_INJECT=f"kill:{step}:effect")
    assert run.code == -9, run.err
    recovered = xen_host.xlsnap("recover", "web")
    assert recovered.code == 0, recovered.err
    assert_running(xen_host)
    dom = xen_host.domain()
    if "finished" in recovered.out:          # rolled forward: the snapshot's state
        assert dom["memory_image"] == token and read_pattern(xen_host.disks[0], 0x11)
    else:                                    # rolled back: as it was before the revert
        assert dom["memory_image"] == "changed-after-s1"
        assert read_pattern(xen_host.disks[0], 0x22)
    assert tags(xen_host.disks[0]) == ["s1"] and tags(xen_host.disks[1]) == ["s1"]
    assert sorted(p.name for p in xen_host.domain_dir.iterdir()
                  if p.suffix == ".save") == ["s1.save"]
    assert xen_host.xlsnap("check", "web").code == 0
