"""The xl driver against the fake xl (tests/fakes/xl): argv, state changes, typed errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from commands.drivers.process import ToolMissing, ToolTimeout
from commands.drivers.xl import (
    SAVE_BASE,
    DomainNotFound,
    DomainState,
    NoHypervisor,
    Xl,
    XlError,
    XlOutputError,
    save_timeout,
)
from tests.fakes.fake_xl_state import FakeDisk, FakeXl

DISKS = [FakeDisk("/images/web-a.qcow2", "xvda"),
         FakeDisk("/images/web-b.raw", "xvdb", format="raw", access="ro", backend="phy")]


def test_list_long_reads_the_domains_disks(fake_xl: FakeXl, xl: Xl) -> None:
    fake_xl.add_domain("web", domid=5, disks=DISKS)
    [dom0, web] = xl.list_long()
    assert (dom0.domid, dom0.name) == (0, "Domain-0")
    assert (web.domid, web.name, web.type) == (5, "web", "hvm")
    assert [(d.pdev_path, d.vdev, d.format, d.readwrite) for d in web.disks] == [
        ("/images/web-a.qcow2", "xvda", "qcow2", True),
        ("/images/web-b.raw", "xvdb", "raw", False)]


def test_list_long_of_one_domain(fake_xl: FakeXl, xl: Xl) -> None:
    fake_xl.add_domain("web", disks=DISKS)
    fake_xl.add_domain("db")
    assert [d.name for d in xl.list_long("db")] == ["db"]
    assert fake_xl.calls()[-1] == ["list", "-l", "db"]


def test_list_long_refuses_sxp(fake_xl: FakeXl, xl: Xl) -> None:
    fake_xl.add_domain("web")
    fake_xl.set_output_format("sxp")
    with pytest.raises(XlOutputError, match="SXP"):
        xl.list_long()


def test_domid_and_domname(fake_xl: FakeXl, xl: Xl) -> None:
    fake_xl.add_domain("web", domid=9)
    assert xl.domid("web") == 9
    assert xl.domname(9) == "web"


def test_unknown_domain_is_domain_not_found(fake_xl: FakeXl, xl: Xl) -> None:
    with pytest.raises(DomainNotFound, match="Can't get domid of domain name 'ghost', "
                                             "maybe this domain does not exist."):
        xl.domid("ghost")
    with pytest.raises(DomainNotFound, match="ghost is an invalid domain identifier"):
        xl.pause("ghost")
    with pytest.raises(DomainNotFound):
        xl.list_long("42")


def test_state_follows_pause_and_unpause(fake_xl: FakeXl, xl: Xl) -> None:
    fake_xl.add_domain("web")
    assert xl.state("web") is DomainState.RUNNING
    xl.pause("web")
    assert xl.state("web") is DomainState.PAUSED
    xl.unpause("web")
    assert xl.state("web") is DomainState.RUNNING
    assert fake_xl.calls() == [["list", "web"], ["pause", "web"], ["list", "web"],
                               ["unpause", "web"], ["list", "web"]]


def test_unpause_failure_is_an_error_although_xl_exits_zero(fake_xl: FakeXl, xl: Xl) -> None:
    """xl 4.17 ignores libxl's result in pause/unpause; the driver reads the libxl line."""
    fake_xl.add_domain("web")
    with pytest.raises(XlError, match="Invalid argument") as caught:
        xl.unpause("web")
    assert caught.value.result.returncode == 0


def test_consistent_save_pauses_and_keeps_the_domain(fake_xl: FakeXl, xl: Xl,
                                                     tmp_path: Path) -> None:
    fake_xl.add_domain("web", disks=DISKS)
    target = tmp_path / "web.save"
    result = xl.save("web", str(target))
    assert result.argv == [xl.binary, "save", "-p", "web", str(target)]
    assert xl.state("web") is DomainState.PAUSED
    data = target.read_bytes()
    assert data.startswith(b"Xen saved domain, xl format\n")
    assert b'"pdev_path": "/images/web-a.qcow2"' in data
    xl.unpause("web")
    assert xl.state("web") is DomainState.RUNNING


def test_checkpoint_save_leaves_the_domain_running(fake_xl: FakeXl, xl: Xl,
                                                   tmp_path: Path) -> None:
    fake_xl.add_domain("web")
    xl.save("web", str(tmp_path / "s"), pause=False, checkpoint=True)
    assert fake_xl.calls()[-1] == ["save", "-c", "web", str(tmp_path / "s")]
    assert xl.state("web") is DomainState.RUNNING


def test_plain_save_destroys_the_domain(fake_xl: FakeXl, xl: Xl, tmp_path: Path) -> None:
    fake_xl.add_domain("web")
    xl.save("web", str(tmp_path / "s"), pause=False)
    with pytest.raises(DomainNotFound):
        xl.domid("web")


def test_restore_makes_a_new_paused_domain_with_a_new_domid(fake_xl: FakeXl, xl: Xl,
                                                            tmp_path: Path) -> None:
    old = fake_xl.add_domain("web", disks=DISKS)
    fake_xl.set_memory("web", "guest-ram-at-save")
    disks = xl.list_long("web")[0].disks
    target = str(tmp_path / "web.save")
    xl.save("web", target)
    xl.destroy("web")
    xl.restore(target)
    assert fake_xl.calls()[-3:] == [["save", "-p", "web", target], ["destroy", "web"],
                                    ["restore", "-p", target]]
    new = fake_xl.domain("web")
    assert new is not None and new["domid"] > old["domid"]
    assert new["memory_image"] == "guest-ram-at-save"
    assert xl.state("web") is DomainState.PAUSED
    assert xl.list_long("web")[0].disks == disks


def test_restore_with_a_config_file(fake_xl: FakeXl, xl: Xl, tmp_path: Path) -> None:
    fake_xl.add_domain("web", disks=DISKS)
    target = str(tmp_path / "web.save")
    xl.save("web", target, pause=False)
    cfg = tmp_path / "web.cfg"
    cfg.write_text('name = "web"\nmemory = 256\ndisk = [ "/snap/web-a.qcow2,qcow2,xvda,rw" ]\n')
    xl.restore(target, paused=False, config=str(cfg))
    assert fake_xl.calls()[-1] == ["restore", str(cfg), target]
    [web] = xl.list_long("web")
    assert [d.pdev_path for d in web.disks] == ["/snap/web-a.qcow2"]
    assert xl.state("web") is DomainState.RUNNING


def test_restore_refuses_while_the_old_domain_exists(fake_xl: FakeXl, xl: Xl,
                                                     tmp_path: Path) -> None:
    fake_xl.add_domain("web")
    target = str(tmp_path / "web.save")
    xl.save("web", target)
    with pytest.raises(XlError, match='Domain with name "web" already exists|cannot make'):
        xl.restore(target)
    assert [d["name"] for d in fake_xl.domains()] == ["Domain-0", "web"]


def test_restore_of_a_missing_file(fake_xl: FakeXl, xl: Xl, tmp_path: Path) -> None:
    with pytest.raises(XlError, match="Can't open restore file: No such file or directory"):
        xl.restore(str(tmp_path / "nothing.save"))


def test_destroy_removes_the_domain(fake_xl: FakeXl, xl: Xl) -> None:
    fake_xl.add_domain("web")
    xl.destroy("web")
    assert [d["name"] for d in fake_xl.domains()] == ["Domain-0"]


def test_injected_save_failure_leaves_domain_running(fake_xl: FakeXl, xl: Xl, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    fake_xl.add_domain("web")
    monkeypatch.setenv("XLSNAP_FAKE_XL_FAIL", "save")
    with pytest.raises(XlError, match="Failed to save domain, resuming domain") as caught:
        xl.save("web", str(tmp_path / "web.save"))
    assert caught.value.result.returncode == 1
    assert xl.state("web") is DomainState.RUNNING


def test_no_hypervisor_is_typed_with_a_one_line_message(fake_xl: FakeXl, xl: Xl,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XLSNAP_FAKE_XL_NO_HYPERVISOR", "1")
    with pytest.raises(NoHypervisor) as caught:
        xl.list_long()
    assert str(caught.value) == ("no Xen hypervisor is running on this host "
                                 "(xl: Can't find hypervisor information in sysfs!)")


def test_a_hanging_xl_is_killed_at_the_timeout(fake_xl: FakeXl, xl: Xl, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    fake_xl.add_domain("web")
    monkeypatch.setenv("XLSNAP_FAKE_XL_HANG", "pause")
    with pytest.raises(ToolTimeout):
        Xl(binary=xl.binary, timeout=0.5).pause("web")


def test_save_and_restore_are_not_bound_by_the_generic_timeout(
        fake_xl: FakeXl, xl: Xl, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_xl.add_domain("web")
    monkeypatch.setenv("XLSNAP_FAKE_XL_HANG", "save,restore")
    monkeypatch.setenv("XLSNAP_FAKE_XL_HANG_SECONDS", "1")
    quick = Xl(binary=xl.binary, timeout=0.3)
    assert quick.save("web", str(tmp_path / "s"), pause=False).ok
    assert quick.restore(str(tmp_path / "s"), paused=True).ok
    assert save_timeout(0) == SAVE_BASE and save_timeout(2**30) == SAVE_BASE + 64


def test_missing_xl_is_tool_missing(tmp_path: Path) -> None:
    with pytest.raises(ToolMissing):
        Xl(binary=str(tmp_path / "no-xl")).list_long()


def test_qmp_socket_path_of_a_domain(tmp_path: Path) -> None:
    assert Xl().qmp_socket_path(7) == "/var/run/xen/qmp-libxl-7"
    assert Xl(qmp_dir=str(tmp_path)).qmp_socket_path(3) == str(tmp_path / "qmp-libxl-3")
