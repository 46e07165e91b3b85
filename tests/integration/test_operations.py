"""The four seed operations on a stopped domain, checked against real qcow2 images."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from commands.config.xlcfg import load_xl_cfg
from commands.config.domains import load_domain
from tests.conftest import Scratch, image_info, qemu_img, read_pattern, tags, write_pattern


def list_json(xlsnap, *extra: str) -> list[dict]:
    run = xlsnap("snapshot-list", "--json", *extra, "web")
    assert run.code == 0, run.err
    return json.loads(run.out)


def test_create_tags_every_writable_disk_and_writes_metadata(scratch: Scratch, xlsnap) -> None:
    run = xlsnap("snapshot-create", "-n", "s1", "web")
    assert run.code == 0, run.err
    assert tags(scratch.disk_a) == ["s1"]
    assert tags(scratch.disk_b) == ["s1"]
    meta = json.loads((scratch.domain_dir / "snapshotdata-s1.libxl-json").read_text())
    assert meta["name"] == "s1" and meta["type"] == "internal" and meta["memory"] == ""
    assert meta["shutdown"] is True and meta["running"] is False
    assert [(d["device"], d["name"], d["file"], d["path"], d["type"]) for d in meta["disks"]] == [
        ("xvda", "s1", "", str(scratch.disk_a), "internal"),
        ("xvdb", "s1", "", str(scratch.disk_b), "internal")]
    assert list_json(xlsnap)[0]["current"] is True


def test_default_name_is_epoch_seconds(scratch: Scratch, xlsnap) -> None:
    before = int(time.time())
    run = xlsnap("snapshot-create", "web")
    after = int(time.time())
    assert run.code == 0, run.err
    (name,) = tags(scratch.disk_a)
    assert re.fullmatch(r"\d+", name) and before <= int(name) <= after


def test_read_only_and_cdrom_disks_are_left_alone(scratch: Scratch, xlsnap) -> None:
    scratch.write_config([f"{scratch.disk_a},qcow2,xvda,rw", f"{scratch.disk_b},qcow2,xvdb,ro",
                          ",raw,hdc:cdrom,r"])
    assert xlsnap("snapshot-create", "-n", "s1", "web").code == 0
    assert tags(scratch.disk_a) == ["s1"] and tags(scratch.disk_b) == []


def test_revert_brings_both_disks_back(scratch: Scratch, xlsnap) -> None:
    write_pattern(scratch.disk_a, 0x11)
    write_pattern(scratch.disk_b, 0x22)
    assert xlsnap("snapshot-create", "-n", "s1", "web").code == 0
    write_pattern(scratch.disk_a, 0x33)
    write_pattern(scratch.disk_b, 0x44)
    run = xlsnap("snapshot-revert", "-n", "s1", "web")
    assert run.code == 0, run.err
    assert read_pattern(scratch.disk_a, 0x11) and read_pattern(scratch.disk_b, 0x22)
    assert tags(scratch.disk_a) == ["s1"]  # the safety tag is gone again


def test_numeric_name_reverts_by_name_not_by_qcow2_id(scratch: Scratch, xlsnap) -> None:
    """qemu-img -a 1 would pick the snapshot whose ID is 1 ("first"), not the one named 1."""
    write_pattern(scratch.disk_a, 0x01)
    assert xlsnap("snapshot-create", "-n", "first", "web").code == 0
    write_pattern(scratch.disk_a, 0x02)
    assert xlsnap("snapshot-create", "-n", "1", "web").code == 0
    ids = {s["name"]: s["id"] for s in image_info(scratch.disk_a)["snapshots"]}
    assert ids["first"] == "1"  # the trap is armed
    write_pattern(scratch.disk_a, 0x03)
    assert xlsnap("snapshot-revert", "-n", "1", "web").code == 0
    assert read_pattern(scratch.disk_a, 0x02)


def test_new_snapshot_after_revert_branches_from_the_reverted_one(scratch: Scratch, xlsnap) -> None:
    for name in ("s1", "s2"):
        assert xlsnap("snapshot-create", "-n", name, "web").code == 0
    assert xlsnap("snapshot-revert", "-n", "s1", "web").code == 0
    assert xlsnap("snapshot-create", "-n", "s3", "web").code == 0
    rows = {r["name"]: r for r in list_json(xlsnap)}
    assert rows["s2"]["parent"] == "s1" and rows["s3"]["parent"] == "s1"
    assert rows["s3"]["current"]
    tree = xlsnap("snapshot-list", "--tree", "web").out.splitlines()
    assert tree == ["s1", "+-- s2", "+-- s3  <- current"]


def test_delete_reparents_children_and_moves_current(scratch: Scratch, xlsnap) -> None:
    for name in ("s1", "s2", "s3"):
        assert xlsnap("snapshot-create", "-n", name, "web").code == 0
    assert xlsnap("snapshot-delete", "-n", "s2", "web").code == 0
    assert tags(scratch.disk_a) == ["s1", "s3"] and tags(scratch.disk_b) == ["s1", "s3"]
    assert not (scratch.domain_dir / "snapshotdata-s2.libxl-json").exists()
    rows = {r["name"]: r for r in list_json(xlsnap)}
    assert rows["s3"]["parent"] == "s1"
    assert xlsnap("snapshot-delete", "-n", "s3", "web").code == 0
    assert [r["name"] for r in list_json(xlsnap) if r["current"]] == ["s1"]


def test_list_long_prints_libxl_json_records(scratch: Scratch, xlsnap) -> None:
    assert xlsnap("snapshot-create", "-n", "s1", "web").code == 0
    one = json.loads(xlsnap("snapshot-list", "-l", "web", "s1").out)
    every = json.loads(xlsnap("snapshot-list", "-l", "web").out)
    assert one["name"] == "s1" and every == [one]
    assert set(one["disks"][0]) == {"device", "name", "file", "format", "path", "type"}


def test_external_snapshot_adds_overlays_and_repoints_the_config(scratch: Scratch, xlsnap) -> None:
    write_pattern(scratch.disk_b, 0x55)
    overlay = scratch.images / "b-over.qcow2"
    cfg = scratch.root / "ext.cfg"
    cfg.write_text(f'name="ext1"\ndescription="before upgrade"\ntype="external"\n'
                   f"disk=['xvdb={overlay},type=qcow2']\n")
    old_config = scratch.config.read_bytes()
    run = xlsnap("snapshot-create", "web", str(cfg))
    assert run.code == 0, run.err
    chain = json.loads(qemu_img("info", "--backing-chain", "--output=json", str(overlay)).stdout)
    assert chain[0]["format"] == "qcow2"
    assert chain[0]["full-backing-filename"] == str(scratch.disk_b)
    domain = load_domain(scratch.config_dir, "web")
    targets = {d.spec.vdev: (d.spec.target, d.spec.format) for d in domain.disks}
    assert targets["xvdb"] == (str(overlay), "qcow2")
    assert targets["xvda"][0] == str(scratch.images / "a.ext1.qcow2")  # default overlay name
    assert "# the guest's disks" in scratch.config.read_text()  # comments survive
    backup = Path(f"{scratch.config}.before-ext1")
    assert backup.read_bytes() == old_config
    assert read_pattern(overlay, 0x55)  # the guest sees the same data through the overlay
    record = json.loads(xlsnap("snapshot-list", "-l", "web", "ext1").out)
    assert record["description"] == "before upgrade"
    import hashlib
    assert record["config"]["sha256_before"] == hashlib.sha256(old_config).hexdigest()
    # xvda was not listed, but type="external" covers every writable disk
    assert {d["device"]: d["type"] for d in record["disks"]} == {"xvda": "external",
                                                                 "xvdb": "external"}


def test_external_snapshot_of_listed_disk_only_when_no_type(scratch: Scratch, xlsnap) -> None:
    overlay = scratch.images / "b-over.qcow2"
    cfg = scratch.root / "ext.cfg"
    cfg.write_text(f"name='e'\ndisk=['xvdb={overlay},type=qcow2']\n")
    assert xlsnap("snapshot-create", "web", str(cfg)).code == 0
    assert load_xl_cfg(scratch.config).get_list("disk")[0].startswith(str(scratch.disk_a))
    assert overlay.exists() and not list(scratch.images.glob("a.*.qcow2"))


def test_external_snapshot_of_one_disk_reverts_and_deletes(scratch: Scratch, xlsnap) -> None:
    cfg = scratch.root / "ext.cfg"
    overlay = scratch.images / "o.qcow2"
    cfg.write_text(f"name='e'\ndisk=['xvdb={overlay}']\n")
    write_pattern(scratch.disk_b, 0x41)
    assert xlsnap("snapshot-create", "web", str(cfg)).code == 0
    write_pattern(overlay, 0x42)
    assert xlsnap("snapshot-revert", "-n", "e", "web").code == 0
    top = {d.spec.vdev: d.spec.target for d in load_domain(scratch.config_dir, "web").disks}
    assert top["xvda"] == str(scratch.disk_a) and top["xvdb"] != str(overlay)
    assert read_pattern(top["xvdb"], 0x41) and read_pattern(overlay, 0x42)
    run = xlsnap("snapshot-delete", "-n", "e", "web")
    assert run.code == 0, run.err
    # the abandoned branch went with the snapshot; the fresh overlay was committed into
    # the base, which the domain uses again, with the same content
    top = {d.spec.vdev: d.spec.target for d in load_domain(scratch.config_dir, "web").disks}
    assert top["xvdb"] == str(scratch.disk_b) and read_pattern(scratch.disk_b, 0x41)
    assert sorted(p.name for p in scratch.images.iterdir()) == ["a.qcow2", "b.qcow2"]
    assert xlsnap("check", "web").code == 0


def test_revert_across_an_external_snapshot_makes_a_new_image(scratch: Scratch,
                                                               xlsnap) -> None:
    write_pattern(scratch.disk_b, 0x51)
    assert xlsnap("snapshot-create", "-n", "s1", "web").code == 0
    cfg = scratch.root / "ext.cfg"
    cfg.write_text(f"name='e'\ndisk=['xvdb={scratch.images / 'o.qcow2'}']\n")
    assert xlsnap("snapshot-create", "web", str(cfg)).code == 0
    write_pattern(scratch.images / "o.qcow2", 0x52)
    run = xlsnap("snapshot-revert", "-n", "s1", "web")
    assert run.code == 0, run.err
    assert tags(scratch.disk_b) == ["s1"]       # the tagged image is not applied to
    top = {d.spec.vdev: d.spec.target for d in load_domain(scratch.config_dir, "web").disks}
    assert top["xvda"] == str(scratch.disk_a) and top["xvdb"] not in (
        str(scratch.disk_b), str(scratch.images / "o.qcow2"))
    assert read_pattern(top["xvdb"], 0x51) and read_pattern(scratch.images / "o.qcow2", 0x52)
    assert xlsnap("check", "web").code == 0


def test_history_names_actor_operation_and_commands(scratch: Scratch, xlsnap) -> None:
    assert xlsnap("snapshot-create", "-n", "s1", "web").code == 0
    rows = json.loads(xlsnap("history", "--json", "web").out)
    kinds = [r["event"] for r in rows]
    assert kinds[:2] == ["Registered", "OperationStarted"]
    assert kinds[-2:] == ["SnapshotTaken", "OperationFinished"]
    started = [r for r in rows if r["event"] == "StepStarted"]
    assert [r["data"]["argv"][:3] for r in started[:2]] == [["qemu-img", "snapshot", "-c"]] * 2
    actor = rows[1]["actor"]
    assert {"uid", "user", "sudo_user", "host", "pid", "argv", "version"} <= set(actor)
    assert "snapshot-create" in actor["argv"]
    assert len({r["operation_id"] for r in rows[1:]}) == 1
    text = xlsnap("history", "web").out
    assert "qemu-img snapshot -c s1" in text


def test_default_overlay_names_come_from_the_chains_base_and_do_not_grow(
        scratch: Scratch, xlsnap) -> None:
    names = [f"e{k}-" + "x" * 57 for k in range(1, 7)]      # 60 characters each
    for k, name in enumerate(names):
        top = {d.spec.vdev: d.spec.target for d in load_domain(scratch.config_dir, "web").disks}
        write_pattern(top["xvda"], 0x10 + k)          # the guest writes to the top image
        cfg = scratch.root / "ext.cfg"
        cfg.write_text(f'name="{name}"\ntype="external"\n')
        run = xlsnap("snapshot-create", "web", str(cfg))
        assert run.code == 0, run.err
    tops = {d.spec.vdev: d.spec.target for d in load_domain(scratch.config_dir, "web").disks}
    assert tops["xvda"] == str(scratch.images / f"a.{names[-1]}.qcow2")
    for k, name in enumerate(names):
        overlay = scratch.images / f"a.{name}.qcow2"
        assert overlay.exists()
        # each overlay's backing file holds the guest's data as it was at that snapshot
        backing = image_info(overlay)["full-backing-filename"]
        assert read_pattern(backing, 0x10 + k)
    assert read_pattern(tops["xvda"], 0x15)
