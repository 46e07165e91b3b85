"""Handlers and planning in-process: a real ledger, qemu-img replaced by an image model.

What needs reality (qemu-img's own behaviour, guest-visible bytes) stays in the cli and
slow tiers; here the rules of compensation, refusal and planning run in milliseconds.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from commands.bootstrap import Services
from commands.config.domains import load_domain
from commands.config.settings import Settings
from commands.config.snapshot_cfg import DiskRequest, SnapshotConfig
from commands.errors import OperationFailed, UsageError
from commands.handlers.create import create_snapshot
from commands.handlers.delete import delete_snapshot
from commands.handlers.messages import CreateSnapshot, DeleteSnapshot, RevertSnapshot
from commands.handlers.revert import revert_snapshot
from commands.planning.snapshot_disks import check_distinct_images, chosen_disks
from ledger.errors import InvalidRequest, OperationInFlight
from tests.fakes.qemu_img_model import Image, ImageModel


class World:
    """One domain ``web`` with disks xvda and xvdb, its config, and services over a model."""

    def __init__(self, tmp: Path, formats: tuple[str, ...] = ("qcow2", "qcow2")) -> None:
        self.home, self.config_dir, images = tmp / "home", tmp / "etc", tmp / "img"
        self.config_dir.mkdir()
        images.mkdir()
        self.paths = [str(images / f"{vdev}.img") for vdev in ("xvda", "xvdb")[:len(formats)]]
        for path in self.paths:
            Path(path).touch()  # the handlers check the files exist; contents are the model's
        specs = ", ".join(f"'{p},{fmt},{vdev},rw'" for p, fmt, vdev
                          in zip(self.paths, formats, ("xvda", "xvdb")))
        (self.config_dir / "web.cfg").write_text(f'name = "web"\ndisk = [{specs}]\n')
        self.qemu_img = ImageModel({p: Image(fmt) for p, fmt in zip(self.paths, formats)})
        settings = Settings.resolve(str(self.home), None, str(self.config_dir), "offline")
        self.svc = Services(settings, {"user": "test"}, qemu_img=self.qemu_img)

    def image(self, n: int) -> Image:
        return self.qemu_img.images[self.paths[n]]

    def snapshots(self) -> list[str]:
        self.svc.sync()
        ledger = self.svc.ledger_for(load_domain(self.config_dir, "web"))
        return sorted(ledger.entries)

    def metadata(self) -> list[str]:
        folder = self.home / load_domain(self.config_dir, "web").uuid
        return sorted(p.name for p in folder.iterdir()) if folder.exists() else []

    def close(self) -> None:
        self.svc.close()


@pytest.fixture
def world(tmp_path: Path):
    w = World(tmp_path)
    yield w
    w.close()


def test_create_tags_every_writable_disk_and_records_the_snapshot(world: World) -> None:
    record = create_snapshot(CreateSnapshot("web", name="s1"), world.svc)
    assert [d["device"] for d in record["disks"]] == ["xvda", "xvdb"]
    assert world.image(0).tags == [("s1", "base")] and world.image(1).tags == [("s1", "base")]
    assert world.snapshots() == ["s1"]
    assert world.metadata() == ["snapshotdata-s1.libxl-json"]


def test_a_failed_disk_is_compensated_nothing_is_left(world: World) -> None:
    world.qemu_img.fail_on.add(("snapshot -c", world.paths[1]))
    with pytest.raises(OperationFailed) as failed:
        create_snapshot(CreateSnapshot("web", name="s1"), world.svc)
    assert failed.value.exit_code == 1
    assert world.image(0).tags == [] and world.image(1).tags == []   # xvda's tag undone
    assert ("snapshot -d", world.paths[0]) in world.qemu_img.calls
    assert world.snapshots() == [] and world.metadata() == []
    ledger = world.svc.ledger_for(load_domain(world.config_dir, "web"))
    ledger.check_idle()   # closed as failed, not left in flight


def test_refused_input_changes_nothing(tmp_path: Path) -> None:
    w = World(tmp_path, formats=("qcow2", "raw"))
    try:
        with pytest.raises(UsageError, match="internal snapshots need qcow2"):
            create_snapshot(CreateSnapshot("web", name="s1"), w.svc)
        assert not any(verb.startswith("snapshot") for verb, _ in w.qemu_img.calls)
        assert w.image(0).tags == [] and w.snapshots() == [] and w.metadata() == []
        with pytest.raises(InvalidRequest, match="path separator"):   # exit code 2
            create_snapshot(CreateSnapshot("web", name="bad/name"), w.svc)
        assert w.snapshots() == [] and w.metadata() == []
    finally:
        w.close()


def test_a_taken_name_is_refused_before_any_side_effect(world: World) -> None:
    create_snapshot(CreateSnapshot("web", name="s1"), world.svc)
    calls = len(world.qemu_img.calls)
    with pytest.raises(InvalidRequest, match="already has a snapshot named 's1'"):
        create_snapshot(CreateSnapshot("web", name="s1"), world.svc)
    assert not any(v.startswith("snapshot") for v, _ in world.qemu_img.calls[calls:])
    assert world.image(0).tags == [("s1", "base")]


def test_revert_brings_back_each_disk_and_drops_its_safety_tag(world: World) -> None:
    create_snapshot(CreateSnapshot("web", name="s1"), world.svc)
    world.image(0).content, world.image(1).content = "later-a", "later-b"
    warnings = revert_snapshot(RevertSnapshot("web", "s1"), world.svc)
    assert warnings == []
    assert world.image(0).content == "base" and world.image(1).content == "base"
    assert world.image(0).tags == [("s1", "base")]   # the safety tag is gone


def test_a_failed_revert_puts_the_reverted_disk_back(world: World) -> None:
    create_snapshot(CreateSnapshot("web", name="s1"), world.svc)
    world.image(0).content, world.image(1).content = "later-a", "later-b"
    world.qemu_img.fail_on.add(("snapshot -a", world.paths[1]))
    with pytest.raises(OperationFailed):
        revert_snapshot(RevertSnapshot("web", "s1"), world.svc)
    # xvda was reverted, then put back through its safety tag; no safety tag is left
    assert world.image(0).content == "later-a" and world.image(1).content == "later-b"
    assert world.image(0).tags == [("s1", "base")] and world.image(1).tags == [("s1", "base")]


def test_delete_removes_tags_and_metadata(world: World) -> None:
    create_snapshot(CreateSnapshot("web", name="s1"), world.svc)
    delete_snapshot(DeleteSnapshot("web", "s1"), world.svc)
    assert world.image(0).tags == [] and world.image(1).tags == []
    assert world.snapshots() == [] and world.metadata() == []


def test_an_operation_in_flight_refuses_the_next(world: World) -> None:
    world.qemu_img.fail_on.add(("snapshot -c", world.paths[1]))
    world.qemu_img.fail_on.add(("snapshot -d", world.paths[0]))   # the undo fails too
    with pytest.raises(Exception) as first:
        create_snapshot(CreateSnapshot("web", name="s1"), world.svc)
    assert getattr(first.value, "exit_code", None) == 3   # left for recover
    world.qemu_img.fail_on.clear()
    with pytest.raises(OperationInFlight, match="in flight"):
        create_snapshot(CreateSnapshot("web", name="s2"), world.svc)
    assert ("s2", "base") not in world.image(0).tags


def test_planning_covers_listed_disks_only_when_no_type_is_set(tmp_path: Path) -> None:
    w = World(tmp_path)
    try:
        domain = load_domain(w.config_dir, "web")
        listed = SnapshotConfig(None, "", None, None, None, (DiskRequest("xvdb", None, None),))
        assert [e.spec.vdev for _, e, _, _ in chosen_disks(domain, listed)] == ["xvdb"]
        typed = listed._replace(type="internal")
        assert [e.spec.vdev for _, e, _, _ in chosen_disks(domain, typed)] == ["xvda", "xvdb"]
        assert [kind for *_, kind in chosen_disks(domain, None)] == ["internal", "internal"]
    finally:
        w.close()


def test_planning_refuses_two_disks_on_one_image(tmp_path: Path) -> None:
    w = World(tmp_path)
    try:
        (w.config_dir / "web.cfg").write_text(
            f"name = \"web\"\ndisk = ['{w.paths[0]},qcow2,xvda,rw', "
            f"'{w.paths[0]},qcow2,xvdb,rw']\n")
        with pytest.raises(UsageError, match="are one image"):
            check_distinct_images(load_domain(w.config_dir, "web"))
    finally:
        w.close()
