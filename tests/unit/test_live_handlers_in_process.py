"""The live handlers in-process: a running QEMU as a QMP model, its disks in an image model.

Rules of the live create, revert and delete on the ``qemu`` toolstack run here in
milliseconds; the same operations against a real QEMU stay in tests/live (slow tier).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from commands.bootstrap import Services
from commands.config.settings import Settings
from commands.errors import OperationFailed, ResourceBusy, UsageError
from commands.handlers.create import create_snapshot
from commands.handlers.delete import delete_snapshot
from commands.handlers.messages import CreateSnapshot, DeleteSnapshot, RevertSnapshot
from commands.handlers.revert import revert_snapshot
from tests.fakes.qemu_img_model import Image, ImageModel
from tests.fakes.qmp_model import Drive, MonitorModel, model_qmp

UUID = "5b0c7e4a-2f7d-4a51-9a55-0d3c4b1e2f60"


class LiveWorld:
    """Domain ``web`` running in a (model) QEMU with disks xvda, xvdb on qcow2 images."""

    def __init__(self, tmp: Path, formats: tuple[str, ...] = ("qcow2", "qcow2")) -> None:
        self.home, self.config_dir, images, qmp_dir = (tmp / "home", tmp / "etc", tmp / "img",
                                                        tmp / "qmp")
        for folder in (self.config_dir, images, qmp_dir):
            folder.mkdir()
        vdevs = ("xvda", "xvdb")[:len(formats)]
        self.paths = [str(images / f"{v}.qcow2") for v in vdevs]
        for path in self.paths:
            Path(path).touch()
        self.socket = str(qmp_dir / "web.qmp")
        Path(self.socket).touch()   # the adapter checks the socket exists; the model answers
        self.qemu_img = ImageModel({p: Image(f, f"disk-{v}") for p, f, v
                                    in zip(self.paths, formats, vdevs)})
        self.qemu = MonitorModel(self.qemu_img, [Drive(v, f"{v}-node", p)
                                                 for v, p in zip(vdevs, self.paths)],
                                 uuid=UUID)
        settings = Settings.resolve(str(self.home), None, str(self.config_dir), "qemu",
                                    str(qmp_dir))
        self.svc = Services(settings, {"user": "test"}, qemu_img=self.qemu_img,
                            qmp=model_qmp({self.socket: self.qemu}))

    def content(self, n: int) -> str:
        """What the guest reads on disk ``n`` now (through the live top image)."""
        return self.qemu.image(self.qemu.drives[n]).content

    def write(self, n: int, content: str) -> None:
        self.qemu.image(self.qemu.drives[n]).content = content

    def snapshots(self) -> list[str]:
        self.svc.sync()
        ledger = self.svc.app.get_domain(UUID)
        return sorted(ledger.entries) if ledger is not None else []

    def idle(self) -> None:
        """The domain's ledger has no operation left in flight."""
        ledger = self.svc.app.get_domain(UUID)
        assert ledger is not None
        ledger.check_idle()

    def close(self) -> None:
        self.svc.close()


@pytest.fixture
def world(tmp_path: Path):
    w = LiveWorld(tmp_path)
    yield w
    w.close()


def test_snapshot_with_memory_goes_into_qcow2_and_the_guest_runs_on(world: LiveWorld) -> None:
    world.qemu.ram = "ram-at-s1"
    record = create_snapshot(CreateSnapshot("web", name="s1"), world.svc)
    assert record["memory_format"] == "qcow2-vmstate" and record["vmstate_device"] == "xvda"
    assert record["memory_size"] == len("ram-at-s1")   # vm-state-size, asked after the save
    commands = [c for c, _ in world.qemu.calls]
    assert commands.index("stop") < commands.index("snapshot-save") < commands.index("cont")
    assert world.qemu.status == "running"
    for drive in world.qemu.drives:
        assert world.qemu.image(drive).tags == [("s1", f"disk-{drive.device}")]
    assert world.snapshots() == ["s1"]


def test_revert_loads_disks_and_memory_and_keeps_no_safety_snapshot(world: LiveWorld) -> None:
    world.qemu.ram = "ram-at-s1"
    create_snapshot(CreateSnapshot("web", name="s1"), world.svc)
    world.write(0, "later-a")
    world.write(1, "later-b")
    world.qemu.ram = "ram-later"
    revert_snapshot(RevertSnapshot("web", "s1"), world.svc)
    assert (world.content(0), world.content(1)) == ("disk-xvda", "disk-xvdb")
    assert world.qemu.ram == "ram-at-s1" and world.qemu.status == "running"
    assert [t for t, _ in world.qemu.image(world.qemu.drives[0]).tags] == ["s1"]
    world.idle()


def test_a_failed_load_puts_disks_and_memory_back_and_resumes(world: LiveWorld) -> None:
    world.qemu.ram = "ram-at-s1"
    create_snapshot(CreateSnapshot("web", name="s1"), world.svc)
    world.write(0, "later-a")
    world.qemu.ram = "ram-later"
    world.qemu.vm_states.pop(("xvda-node", "s1"))   # the load of s1 fails (restore-vm)
    with pytest.raises(OperationFailed) as failed:
        revert_snapshot(RevertSnapshot("web", "s1"), world.svc)
    assert failed.value.exit_code == 1
    assert world.content(0) == "later-a" and world.qemu.ram == "ram-later"
    assert world.qemu.status == "running"
    assert [t for t, _ in world.qemu.image(world.qemu.drives[0]).tags] == ["s1"]
    world.idle()


def test_a_failed_disk_snapshot_resumes_the_guest_and_leaves_nothing(world: LiveWorld) -> None:
    world.qemu.fail_on.add("snapshot-save")
    with pytest.raises(OperationFailed):
        create_snapshot(CreateSnapshot("web", name="s1"), world.svc)
    assert world.qemu.status == "running"
    assert all(world.qemu.image(d).tags == [] for d in world.qemu.drives)
    assert world.snapshots() == []
    assert not (world.home / UUID).exists() or not any((world.home / UUID).iterdir())
    world.idle()


def test_a_paused_guest_stays_paused(world: LiveWorld) -> None:
    world.qemu.status = "paused"
    record = create_snapshot(CreateSnapshot("web", name="s1"), world.svc)
    assert record["paused"] and world.qemu.status == "paused"
    assert "cont" not in [c for c, _ in world.qemu.calls]


def test_disk_only_is_one_transaction_without_pause(world: LiveWorld) -> None:
    record = create_snapshot(CreateSnapshot("web", name="s1", disk_only=True), world.svc)
    assert record["crash_consistent"] and record["memory"] == "no"
    commands = [c for c, _ in world.qemu.calls]
    assert "stop" not in commands and commands.count("transaction") == 1
    assert all([t for t, _ in world.qemu.image(d).tags] == ["s1"] for d in world.qemu.drives)


def test_a_refused_transaction_changes_no_disk(world: LiveWorld) -> None:
    world.qemu.fail_on.add("blockdev-snapshot-internal-sync")
    with pytest.raises(OperationFailed):
        create_snapshot(CreateSnapshot("web", name="s1", disk_only=True), world.svc)
    assert all(world.qemu.image(d).tags == [] for d in world.qemu.drives)
    assert world.snapshots() == [] and world.qemu.status == "running"
    world.idle()


@pytest.mark.parametrize("fail", ["migrate", "fail:4:intent"])   # the memory, the unpause
def test_a_failed_external_create_commits_the_overlays_back_and_resumes(
        world: LiveWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail: str) -> None:
    cfg = tmp_path / "snap.cfg"
    cfg.write_text('name = "s1"\ntype = "external"\n')
    if fail.startswith("fail:"):
        monkeypatch.setenv("XLSNAP_FAULT_INJECT", fail)   # engine/fault_injection.py
    else:
        world.qemu.fail_on.add(fail)
    with pytest.raises(OperationFailed):
        create_snapshot(CreateSnapshot("web", config_file=str(cfg)), world.svc)
    assert [d.file for d in world.qemu.drives] == world.paths   # overlays committed back
    assert sorted(str(p) for p in Path(world.paths[0]).parent.iterdir()) == world.paths
    assert world.qemu.status == "running"
    assert (world.content(0), world.content(1)) == ("disk-xvda", "disk-xvdb")
    assert not list(world.home.rglob("*.save")) and world.snapshots() == []
    world.idle()


def test_external_with_memory_file(world: LiveWorld, tmp_path: Path) -> None:
    cfg = tmp_path / "snap.cfg"
    cfg.write_text('name = "s1"\ntype = "external"\n')
    world.qemu.ram = "ram-at-s1"
    record = create_snapshot(CreateSnapshot("web", config_file=str(cfg)), world.svc)
    memory = world.home / UUID / "s1.save"
    assert record["memory_file"] == str(memory) and memory.read_bytes() == b"QEVMram-at-s1"
    assert memory.stat().st_mode & 0o777 == 0o600
    assert [d.backing for d in world.qemu.drives] == world.paths
    assert world.qemu.status == "running"
    assert world.qemu_img.images[world.paths[0]].content == "disk-xvda"


def test_delete_removes_the_whole_vm_snapshot_through_qmp(world: LiveWorld) -> None:
    create_snapshot(CreateSnapshot("web", name="s1"), world.svc)
    delete_snapshot(DeleteSnapshot("web", "s1"), world.svc)
    deleted = [a["device"] for c, a in world.qemu.calls
               if c == "blockdev-snapshot-delete-internal-sync"]
    assert deleted == ["xvda", "xvdb"]   # through QMP: qemu-img may not touch open images
    assert not any(v == "snapshot -d" for v, _ in world.qemu_img.calls)
    assert all(world.qemu.image(d).tags == [] for d in world.qemu.drives)
    assert world.qemu.vm_states == {} and world.snapshots() == []


def test_a_busy_socket_is_refused_with_nothing_changed(world: LiveWorld) -> None:
    world.qemu.busy = True
    with pytest.raises(ResourceBusy, match="is busy") as busy:
        create_snapshot(CreateSnapshot("web", name="s1"), world.svc)
    assert busy.value.exit_code == 3
    assert world.qemu.calls == [] and world.snapshots() == []


def test_refusals_before_anything_runs(world: LiveWorld) -> None:
    create_snapshot(CreateSnapshot("web", name="s1"), world.svc)
    sent = len(world.qemu.calls)
    world.qemu.image(world.qemu.drives[1]).tags.append(("stray", "x"))
    with pytest.raises(UsageError, match="tag 'stray' that the ledger does not know"):
        create_snapshot(CreateSnapshot("web", name="stray"), world.svc)
    world.qemu.status = "inmigrate"
    with pytest.raises(UsageError, match="is inmigrate|only a running or paused"):
        create_snapshot(CreateSnapshot("web", name="s2"), world.svc)
    changing = {"stop", "cont", "transaction", "snapshot-save", "migrate"}
    assert not changing & {c for c, _ in world.qemu.calls[sent:]}
    assert world.snapshots() == ["s1"]


def test_reverting_a_running_domain_under_an_overlay_is_refused_saying_what_to_do(
        world: LiveWorld, tmp_path: Path) -> None:
    """An internal snapshot whose tag is now in a backing image (a later external snapshot
    put overlays on top): QEMU loads a tag only from the image it writes to."""
    create_snapshot(CreateSnapshot("web", name="s1", disk_only=True), world.svc)
    cfg = tmp_path / "snap.cfg"
    cfg.write_text('name = "x1"\ntype = "external"\nmemory = "no"\n')
    create_snapshot(CreateSnapshot("web", config_file=str(cfg)), world.svc)
    world.write(0, "written-after-x1")
    tops = [d.file for d in world.qemu.drives]
    sent = len(world.qemu.calls)
    with pytest.raises(UsageError, match="under an overlay is not supported: stop the "
                                         "domain, then revert it") as refused:
        revert_snapshot(RevertSnapshot("web", "s1"), world.svc)
    assert refused.value.exit_code == 2
    changing = {"stop", "cont", "transaction", "snapshot-load", "blockdev-add",
                "blockdev-snapshot-sync"}
    assert not {c for c, _ in world.qemu.calls[sent:]} & changing
    assert [d.file for d in world.qemu.drives] == tops
    assert world.content(0) == "written-after-x1" and world.qemu.status == "running"
    assert world.snapshots() == ["s1", "x1"]
    world.idle()
