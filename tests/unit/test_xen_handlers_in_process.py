"""The Xen live handlers in-process: ``xl`` and the device model's QMP as models.

Rules of create, revert and delete of a running Xen domain run here in milliseconds; the
same against the process fake of xl and a real QEMU stay in tests/xen (slow tier).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from commands.bootstrap import Services
from commands.config.settings import Settings
from commands.errors import OperationFailed, UsageError
from commands.handlers.create import create_snapshot
from commands.handlers.delete import delete_snapshot
from commands.handlers.messages import CreateSnapshot, DeleteSnapshot, RevertSnapshot
from commands.handlers.revert import revert_snapshot
from tests.fakes.qemu_img_model import Image, ImageModel
from tests.fakes.qmp_model import Drive, MonitorModel, model_qmp
from tests.fakes.xl_model import XenDomain, XlModel

UUID = "8d3e0a52-6f0e-4c41-9a7b-3f1d5b2e9c10"
VDEVS = ("xvda", "xvdb")


class XenWorld:
    """Domain ``web`` (id 5, HVM) with qcow2 disks served by its device model's qdisk."""

    def __init__(self, tmp: Path) -> None:
        self.home, images = tmp / "home", tmp / "img"
        (tmp / "etc").mkdir()
        images.mkdir()
        self.paths = [str(images / f"{v}.qcow2") for v in VDEVS]
        for path in self.paths:
            Path(path).touch()
        self.qemu_img = ImageModel({p: Image("qcow2", f"disk-{v}")
                                    for p, v in zip(self.paths, VDEVS)})
        # libxl's qdisk: anonymous backends, nodes named <vdev>-<format> (tests/xen/conftest.py)
        model = MonitorModel(self.qemu_img, [Drive("", f"{v}-qcow2", p)
                                             for v, p in zip(VDEVS, self.paths)],
                             ram="ram-0", uuid=UUID)
        self.xl = XlModel()
        self.xl.add(XenDomain("web", 5, UUID, list(zip(self.paths, VDEVS)), model))
        settings = Settings.resolve(str(self.home), None, str(tmp / "etc"), "xen")
        self.svc = Services(settings, {"user": "test"}, qemu_img=self.qemu_img, xl=self.xl,
                            qmp=model_qmp(self.xl.qmp_models))

    @property
    def dom(self) -> XenDomain:
        found = self.xl.by_name("web")
        assert found is not None
        return found

    def content(self) -> tuple[str, ...]:
        return tuple(self.qemu_img.images[p].content for p in self.paths)

    def tags(self) -> list[list[str]]:
        return [[t for t, _ in self.qemu_img.images[p].tags] for p in self.paths]

    def verbs(self) -> list[str]:
        return [c[0] for c in self.xl.calls if c[0] in ("save", "restore", "destroy",
                                                          "pause", "unpause")]

    def snapshots(self) -> list[str]:
        self.svc.sync()
        ledger = self.svc.app.get_domain(UUID)
        if ledger is not None:
            ledger.check_idle()   # nothing left in flight
        return sorted(ledger.entries) if ledger is not None else []


@pytest.fixture
def world(tmp_path: Path):
    w = XenWorld(tmp_path)
    yield w
    w.svc.close()


def test_snapshot_is_save_p_then_one_transaction_then_unpause(world: XenWorld) -> None:
    world.dom.model.ram = "ram-at-s1"
    record = create_snapshot(CreateSnapshot("web", name="s1"), world.svc)
    memory = world.home / UUID / "s1.save"
    assert record["memory_file"] == str(memory) and b"ram-at-s1" in memory.read_bytes()
    assert memory.stat().st_mode & 0o777 == 0o600
    assert world.verbs() == ["save", "unpause"]
    assert [c for c, _ in world.dom.model.calls if c == "transaction"] == ["transaction"]
    assert world.dom.pause_count == 0 and world.tags() == [["s1"], ["s1"]]
    assert world.snapshots() == ["s1"]


def test_disk_only_does_not_pause(world: XenWorld) -> None:
    create_snapshot(CreateSnapshot("web", name="s1", disk_only=True), world.svc)
    assert world.verbs() == [] and world.tags() == [["s1"], ["s1"]]


def test_a_failed_save_leaves_the_domain_running_and_nothing_behind(world: XenWorld) -> None:
    world.xl.fail_on.add("save")
    with pytest.raises(OperationFailed):
        create_snapshot(CreateSnapshot("web", name="s1"), world.svc)
    assert world.dom.pause_count == 0 and world.tags() == [[], []]
    assert not list(world.home.rglob("*.save")) and world.snapshots() == []


def test_a_failed_transaction_is_undone_and_the_domain_unpaused(world: XenWorld) -> None:
    world.dom.model.fail_on.add("blockdev-snapshot-internal-sync")
    with pytest.raises(OperationFailed):
        create_snapshot(CreateSnapshot("web", name="s1"), world.svc)
    assert world.dom.pause_count == 0 and world.tags() == [[], []]
    assert not list(world.home.rglob("*.save")) and world.snapshots() == []


def test_external_snapshot_of_a_running_domain_is_refused(world: XenWorld,
                                                         tmp_path: Path) -> None:
    cfg = tmp_path / "ext.cfg"
    cfg.write_text('name = "e1"\ntype = "external"\n')
    with pytest.raises(UsageError, match="external snapshots of a running Xen domain"):
        create_snapshot(CreateSnapshot("web", config_file=str(cfg)), world.svc)
    assert world.verbs() == [] and world.dom.model.calls[-1][0] == "query-block"


def _snapshot_then_change(world: XenWorld) -> None:
    world.dom.model.ram = "ram-at-s1"
    create_snapshot(CreateSnapshot("web", name="s1"), world.svc)
    for path in world.paths:
        world.qemu_img.images[path].content = "later"
    world.dom.model.ram = "ram-later"


def test_revert_destroys_reverts_disks_restores_and_unpauses(world: XenWorld) -> None:
    _snapshot_then_change(world)
    revert_snapshot(RevertSnapshot("web", "s1"), world.svc)
    assert world.content() == ("disk-xvda", "disk-xvdb")
    assert world.dom.domid != 5 and world.dom.model.ram == "ram-at-s1"
    assert world.dom.pause_count == 0 and world.tags() == [["s1"], ["s1"]]
    assert world.verbs()[2:] == ["save", "destroy", "restore", "unpause"]


def test_a_failed_restore_brings_back_the_domain_as_it_was(world: XenWorld) -> None:
    _snapshot_then_change(world)
    world.xl.fail_once.add("restore")   # the undo's restore of the safety image works
    with pytest.raises(OperationFailed):
        revert_snapshot(RevertSnapshot("web", "s1"), world.svc)
    assert world.content() == ("later", "later")
    assert world.dom.model.ram == "ram-later" and world.dom.pause_count == 0
    assert world.tags() == [["s1"], ["s1"]] and world.snapshots() == ["s1"]
    assert sorted(p.name for p in (world.home / UUID).iterdir()) == [
        "s1.save", "snapshotdata-s1.libxl-json"]   # no safety image left


def test_when_the_undo_fails_too_it_is_left_for_recover_with_the_safety_image(
        world: XenWorld) -> None:
    _snapshot_then_change(world)
    world.xl.fail_on.add("restore")
    with pytest.raises(Exception) as failed:
        revert_snapshot(RevertSnapshot("web", "s1"), world.svc)
    assert getattr(failed.value, "exit_code", None) == 3 and "recover" in str(failed.value)
    assert world.xl.by_name("web") is None
    assert world.content() == ("later", "later")   # the disks were put back
    safety = [p for p in (world.home / UUID).iterdir() if p.name.startswith(".xlsnap-revert")]
    assert len(safety) == 1 and b"ram-later" in safety[0].read_bytes()


def test_delete_removes_live_tags_through_qmp_and_the_memory_image(world: XenWorld) -> None:
    create_snapshot(CreateSnapshot("web", name="s1"), world.svc)
    delete_snapshot(DeleteSnapshot("web", "s1"), world.svc)
    assert [a["device"] for c, a in world.dom.model.calls
            if c == "blockdev-snapshot-delete-internal-sync"] == ["xvda-qcow2", "xvdb-qcow2"]
    assert world.tags() == [[], []] and not list(world.home.rglob("*.save"))
    assert world.snapshots() == []
