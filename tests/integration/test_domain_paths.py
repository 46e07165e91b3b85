"""A domain's files as paths: linked configs, overlay modes, shared uuids and images,
snapshot files aimed into xlsnap's home. Real CLI, real qemu-img; guest data read back."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.conftest import Scratch, image_info, read_pattern, tags, write_pattern
from tests.integration.test_state_folders import one_error_line

NOBODY = 65534
DAEMON_GID = 1
OTHER_UUID = "0b8f6a52-1c2d-4e3f-8a9b-0c1d2e3f4a5b"


def external_cfg(scratch: Scratch, body: str = 'type = "external"\n') -> Path:
    path = scratch.root / "ext.cfg"
    path.write_text(body)
    return path


def backing(path: Path) -> str | None:
    info = image_info(path)
    return info.get("full-backing-filename") or info.get("backing-filename")


# ---- item 9: a domain config that is a link ---------------------------------------------


def test_an_external_snapshot_rewrites_the_file_a_linked_config_points_to(
        scratch: Scratch, xlsnap) -> None:
    real_dir = scratch.root / "srv" / "cfg"
    real_dir.mkdir(parents=True)
    real = real_dir / "web.cfg"
    scratch.config.rename(real)
    scratch.config.symlink_to(real)
    original = real.read_text()
    write_pattern(scratch.disk_a, 0xAA)
    run = xlsnap("snapshot-create", "-n", "e1", "web", str(external_cfg(scratch)))
    assert run.code == 0, run.err
    assert scratch.config.is_symlink() and os.readlink(scratch.config) == str(real)
    overlay = scratch.images / "a.e1.qcow2"
    assert str(overlay) in real.read_text() and str(scratch.disk_a) not in real.read_text()
    assert (real_dir / "web.cfg.before-e1").read_text() == original
    assert not (scratch.config_dir / "web.cfg.before-e1").exists()
    assert sorted(p.name for p in scratch.config_dir.iterdir()) == ["web.cfg"]
    write_pattern(overlay, 0xBB)           # the guest writes on: into the overlay
    assert read_pattern(scratch.disk_a, 0xAA) and read_pattern(overlay, 0xBB)
    assert backing(overlay) == str(scratch.disk_a)
    run = xlsnap("snapshot-create", "-n", "e2", "web", str(external_cfg(scratch)))
    assert run.code == 0, run.err     # the link's target names e1's overlay: e2 goes on it
    # default overlay names come from the base image (a.e2), not the top (a.e1.e2)
    assert backing(scratch.images / "a.e2.qcow2") == str(overlay)
    assert read_pattern(scratch.images / "a.e2.qcow2", 0xBB)


@pytest.mark.parametrize("fault, then", [("fail:4:intent", None),
                                         ("kill:4:intent", ["recover", "web"])],
                         ids=["failed", "killed-then-recovered"])
def test_an_undone_external_snapshot_leaves_the_linked_config_and_its_target_as_they_were(
        scratch: Scratch, xlsnap, fault: str, then: list[str] | None) -> None:
    real = scratch.root / "web-real.cfg"
    scratch.config.rename(real)
    scratch.config.symlink_to(real)
    original = real.read_bytes()
    write_pattern(scratch.disk_a, 0xAA)
    run = xlsnap("snapshot-create", "-n", "e1", "web", str(external_cfg(scratch)),
                 env={**scratch.env(), "XLSNAP_FAULT_INJECT": fault})  # step 4: metadata
    assert run.code != 0
    if then:
        assert xlsnap(*then).code == 0
    assert scratch.config.is_symlink() and os.readlink(scratch.config) == str(real)
    assert real.read_bytes() == original
    assert not (scratch.root / "web-real.cfg.before-e1").exists()
    assert sorted(os.listdir(scratch.images)) == ["a.qcow2", "b.qcow2"]
    assert read_pattern(scratch.disk_a, 0xAA) and tags(scratch.disk_a) == []
    assert xlsnap("snapshot-create", "-n", "s1", "web").code == 0


# ---- item 10: an overlay is as private as its base --------------------------------------


def test_an_offline_overlay_gets_its_base_images_mode_and_owner(
        scratch: Scratch, xlsnap) -> None:
    write_pattern(scratch.disk_a, 0xAA)
    os.chown(scratch.disk_a, NOBODY, DAEMON_GID)
    os.chmod(scratch.disk_a, 0o600)
    os.chmod(scratch.disk_b, 0o640)
    run = xlsnap("snapshot-create", "-n", "e1", "web", str(external_cfg(scratch)))
    assert run.code == 0, run.err
    a1, b1 = scratch.images / "a.e1.qcow2", scratch.images / "b.e1.qcow2"
    assert stat.S_IMODE(a1.stat().st_mode) == 0o600
    assert (a1.stat().st_uid, a1.stat().st_gid) == (NOBODY, DAEMON_GID)
    assert stat.S_IMODE(b1.stat().st_mode) == 0o640 and b1.stat().st_uid == 0
    assert read_pattern(a1, 0xAA) and read_pattern(scratch.disk_a, 0xAA)


# ---- item 13: one uuid, one domain ------------------------------------------------------


def test_a_second_domain_claiming_a_uuid_in_other_letter_case_is_refused(
        scratch: Scratch, xlsnap) -> None:
    write_pattern(scratch.disk_a, 0xAA)
    assert xlsnap("snapshot-create", "-n", "s1", "web").code == 0
    scratch.write_config([f"{scratch.disk_b},qcow2,xvda,rw"], name="web2")
    web2 = scratch.config_dir / "web2.cfg"
    web2.write_text(web2.read_text().replace(scratch.uuid, scratch.uuid.upper()))
    for argv in (["snapshot-create", "-n", "s2", "web2"], ["snapshot-list", "web2"],
                 ["snapshot-revert", "-n", "s1", "web2"]):
        one_error_line(xlsnap(*argv), 2, "'web2'", "'web'", scratch.uuid, "share a uuid")
    assert tags(scratch.disk_b) == ["s1"] and read_pattern(scratch.disk_a, 0xAA)
    listing = xlsnap("snapshot-list", "web")
    assert listing.code == 0 and "s1" in listing.out and "s2" not in listing.out


def test_a_domain_whose_config_writes_its_uuid_in_capitals_keeps_its_ledger(
        scratch: Scratch, xlsnap) -> None:
    assert xlsnap("snapshot-create", "-n", "s1", "web").code == 0
    scratch.config.write_text(scratch.config.read_text().replace(scratch.uuid,
                                                                 scratch.uuid.upper()))
    assert "s1" in xlsnap("snapshot-list", "web").out
    assert xlsnap("snapshot-create", "-n", "s2", "web").code == 0
    assert sorted(p.name for p in scratch.home.iterdir() if p.is_dir()) == [scratch.uuid]
    assert tags(scratch.disk_a) == ["s1", "s2"]


def test_a_uuid_in_another_form_than_xls_is_refused(scratch: Scratch, xlsnap) -> None:
    for form in ("{" + scratch.uuid + "}", scratch.uuid.replace("-", ""),
                 "urn:uuid:" + scratch.uuid):
        scratch.config.write_text(scratch.config.read_text().replace(scratch.uuid, form))
        one_error_line(xlsnap("snapshot-create", "-n", "s1", "web"), 2,
                       f"invalid uuid {form!r}")
        scratch.config.write_text(scratch.config.read_text().replace(form, scratch.uuid))
    assert tags(scratch.disk_a) == []


# ---- item 14: one image listed twice -----------------------------------------------------


def test_a_domain_listing_one_image_twice_is_refused_naming_both_disks(
        scratch: Scratch, xlsnap) -> None:
    alias = scratch.root / "x" / ".." / "images" / "a.qcow2"
    link = scratch.root / "a-link.qcow2"
    link.symlink_to(scratch.disk_a)
    for second in (alias, link):
        scratch.write_config([f"{scratch.disk_a},qcow2,xvda,rw", f"{second},qcow2,xvdb,rw"])
        for argv in (["snapshot-create", "-n", "s1", "web"],
                     ["snapshot-create", "-n", "e1", "web", str(external_cfg(scratch))]):
            one_error_line(xlsnap(*argv), 2, "'xvda'", "'xvdb'", str(scratch.disk_a),
                           "are one image")
    assert tags(scratch.disk_a) == [] and sorted(os.listdir(scratch.images)) == [
        "a.qcow2", "b.qcow2"]


def test_one_read_only_image_on_two_read_only_disks_is_fine(scratch: Scratch, xlsnap) -> None:
    scratch.write_config([f"{scratch.disk_a},qcow2,xvda,rw", f"{scratch.disk_b},qcow2,xvdb,ro",
                          f"{scratch.disk_b},qcow2,xvdc,ro"])
    assert xlsnap("snapshot-create", "-n", "s1", "web").code == 0
    assert tags(scratch.disk_a) == ["s1"] and tags(scratch.disk_b) == []


# ---- item 26: snapshot files aimed into xlsnap's home -----------------------------------


def test_overlay_or_memory_paths_into_xlsnaps_home_are_refused(scratch: Scratch, xlsnap) -> None:
    assert xlsnap("snapshot-create", "-n", "s1", "web").code == 0
    other = scratch.home / OTHER_UUID
    other.mkdir(mode=0o700)
    via_link = scratch.root / "state-link"
    via_link.symlink_to(scratch.home)
    targets = [other / "o.qcow2", scratch.home / "o.qcow2", via_link / OTHER_UUID / "o.qcow2",
               scratch.root / "images" / ".." / "state" / "x.qcow2"]
    for target in targets:
        cfg = external_cfg(scratch, f'type = "external"\ndisk = ["xvda={target}"]\n')
        one_error_line(xlsnap("snapshot-create", "-n", "e1", "web", str(cfg)), 2,
                       f"overlay of disk 'xvda' {target} is inside xlsnap's home")
    for target in (other / "m.save", scratch.ledger):
        cfg = external_cfg(scratch, f'memory = "{target}"\n')
        one_error_line(xlsnap("snapshot-create", "-n", "m1", "web", str(cfg)), 2,
                       f"memory image {target} is inside xlsnap's home")
    assert list(other.iterdir()) == [] and tags(scratch.disk_a) == ["s1"]
    assert sorted(os.listdir(scratch.images)) == ["a.qcow2", "b.qcow2"]
