"""Fixtures for the driver tests: a fake xl state folder, and real QEMU VMs."""

from __future__ import annotations

from pathlib import Path

import pytest

from commands.drivers.xl import Xl
from tests.fakes.fake_xl_state import FakeXl
from tests.qemu_vm import qemu_vms  # noqa: F401  (a fixture)


@pytest.fixture
def fake_xl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeXl:
    """A fake xl state folder, wired into the environment that the driver's xl inherits."""
    fake = FakeXl(tmp_path / "xl-state")
    for key, value in fake.env().items():
        monkeypatch.setenv(key, value)
    for key in ("XLSNAP_FAKE_XL_FAIL", "XLSNAP_FAKE_XL_HANG", "XLSNAP_FAKE_XL_NO_HYPERVISOR"):
        monkeypatch.delenv(key, raising=False)
    return fake


@pytest.fixture
def xl(fake_xl: FakeXl, tmp_path: Path) -> Xl:
    """The xl driver pointed at the fake, with a QMP folder under tmp_path."""
    return Xl(binary=fake_xl.binary, timeout=20.0, qmp_dir=str(tmp_path / "run-xen"))
