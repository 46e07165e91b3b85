"""``--toolstack auto``: the first adapter that reaches the domain, or one line of reasons."""

from __future__ import annotations

from pathlib import Path

import pytest

from commands.drivers.qmp import Qmp
from commands.drivers.xl import Xl
from commands.errors import UsageError
from commands.config.settings import Settings
from commands.toolstacks.select import resolve
from tests.fakes.fake_xl_state import FAKE_XL, FakeDisk, FakeXl


def _settings(tmp_path: Path, toolstack: str = "auto", qmp: bool = False) -> Settings:
    (tmp_path / "xen").mkdir(exist_ok=True)
    return Settings(tmp_path / "home", str(tmp_path / "l.sqlite"), tmp_path / "xen", toolstack,
                    tmp_path / "qmp" if qmp else None)


def _config(settings: Settings) -> None:
    (settings.config_dir / "web.cfg").write_text(
        'name = "web"\ndisk = [ "/i/a.qcow2,qcow2,xvda" ]\n')


def _never(path: str) -> Qmp:
    raise AssertionError(f"no QMP socket should be reached ({path})")


def test_auto_falls_back_to_the_config_file(tmp_path: Path) -> None:
    settings = _settings(tmp_path, qmp=True)
    _config(settings)
    said: list[str] = []
    target = resolve(settings, "web", Xl(str(tmp_path / "no-xl")), _never, said.append)
    assert target.toolstack == "offline" and target.live is None
    assert said == [f"toolstack offline (auto): stopped domain, config {settings.config_dir}/"
                    f"web.cfg (not qemu: no QMP socket {tmp_path}/qmp/web.qmp)"]


def test_a_domain_found_nowhere_is_refused_with_every_reason(tmp_path: Path,
                                                             monkeypatch) -> None:
    fake = FakeXl(tmp_path / "state")
    monkeypatch.setenv("XLSNAP_FAKE_XL_STATE", str(fake.root))
    monkeypatch.setenv("XLSNAP_FAKE_XL_NO_HYPERVISOR", "1")
    settings = _settings(tmp_path)
    with pytest.raises(UsageError) as refused:
        resolve(settings, "web", Xl(str(FAKE_XL)), _never)
    assert str(refused.value) == (
        f"unknown domain 'web': no config file {settings.config_dir}/web.cfg (xen: no Xen "
        "hypervisor is running on this host (xl: Can't find hypervisor information in sysfs!))")


def test_xen_wins_over_a_config_file_and_keeps_its_ledger_key(tmp_path: Path,
                                                             monkeypatch) -> None:
    fake = FakeXl(tmp_path / "state")
    monkeypatch.setenv("XLSNAP_FAKE_XL_STATE", str(fake.root))
    monkeypatch.delenv("XLSNAP_FAKE_XL_NO_HYPERVISOR", raising=False)
    fake.add_domain("web", domid=7, uuid="11111111-2222-4333-8444-555555555555",
                    disks=[FakeDisk("/i/a.qcow2", "xvda"), FakeDisk("/i/c.iso", "hdc", "raw",
                                                                    "ro", "phy", cdrom=True)])
    settings = _settings(tmp_path)
    _config(settings)
    target = resolve(settings, "web", Xl(str(FAKE_XL), qmp_dir="/run/x"), _never)
    assert target.toolstack == "xen" and target.live is not None
    assert (target.live.domid, target.live.state) == (7, "running")
    assert target.live.qmp_socket == "/run/x/qmp-libxl-7"
    assert target.domain.key == "name:web"          # the config's key: one ledger per domain
    assert [(e.spec.vdev, e.spec.writable, e.span is not None) for e in target.domain.disks] == [
        ("xvda", True, True), ("hdc", False, False)]


def test_an_unknown_toolstack_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown toolstack 'vmware'"):
        resolve(_settings(tmp_path, "vmware"), "web", Xl("xl"), _never)
