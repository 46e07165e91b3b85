"""``check`` names what is wrong with an image: changed base, unreadable, corrupt, no backing."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Scratch, qemu_img, read_pattern, write_pattern


def _kinds(run) -> list[tuple[str, str]]:
    return sorted((d["kind"], Path(d.get("path", "")).name) for d in json.loads(run.out))


def _external(scratch: Scratch, xlsnap, name: str) -> Path:
    """An external snapshot of both disks; returns disk a's new overlay."""
    cfg = scratch.root / f"{name}.cfg"
    cfg.write_text(f'name = "{name}"\ntype = "external"\n')
    run = xlsnap("snapshot-create", "web", str(cfg))
    assert run.code == 0, run.err
    record = json.loads(xlsnap("snapshot-list", "-l", "web", name).out)
    return Path(record["disks"][0]["path"])


def test_check_reports_a_base_committed_into_by_hand(scratch: Scratch, xlsnap) -> None:
    write_pattern(scratch.disk_a, 0xAA)
    e1 = _external(scratch, xlsnap, "e1")
    write_pattern(e1, 0xBB)
    e2 = _external(scratch, xlsnap, "e2")
    write_pattern(e2, 0xCC)
    assert xlsnap("check", "web").code == 0
    qemu_img("commit", "-q", str(e2))                   # e2's writes merged into e1's overlay
    assert read_pattern(e1, 0xCC) and read_pattern(scratch.disk_a, 0xAA)
    run = xlsnap("check", "--json", "web")
    assert run.code == 3
    assert _kinds(run) == [("base-changed", e1.name)]
    (diff,) = json.loads(run.out)
    assert diff["snapshot"] == "e2" and "mtime_ns" in diff["detail"]
    text = xlsnap("check", "web")
    assert text.code == 3 and text.out.startswith("base-changed:") and str(e1) in text.out


def test_deleting_a_tag_kept_in_a_base_is_not_a_change(scratch: Scratch, xlsnap) -> None:
    assert xlsnap("snapshot-create", "-n", "s0", "web").code == 0
    _external(scratch, xlsnap, "e1")            # a.qcow2 (holding tag s0) is now a base
    assert xlsnap("check", "web").code == 0
    run = xlsnap("snapshot-delete", "-n", "s0", "web")
    assert run.code == 0, run.err
    run = xlsnap("check", "web")
    assert run.code == 0, run.out


def test_check_names_an_unreadable_image(scratch: Scratch, xlsnap) -> None:
    assert xlsnap("snapshot-create", "-n", "s1", "web").code == 0
    with scratch.disk_b.open("r+b") as handle:      # qcow2 version 99: qemu-img refuses it
        handle.seek(4)
        handle.write((99).to_bytes(4, "big"))
    run = xlsnap("check", "--json", "web")
    assert run.code == 3, run.err
    assert _kinds(run) == [("unreadable-image", "b.qcow2")]
    assert "version" in json.loads(run.out)[0]["detail"]


def test_check_names_a_corrupt_image_and_lists_no_tags_from_it(scratch: Scratch,
                                                               xlsnap) -> None:
    assert xlsnap("snapshot-create", "-n", "s1", "web").code == 0
    qemu_img("snapshot", "-c", "", str(scratch.disk_a))     # a nameless tag, then corrupt
    with scratch.disk_a.open("r+b") as handle:              # the corrupt bit (header byte 79)
        handle.seek(79)
        handle.write(b"\x02")
    run = xlsnap("check", "--json", "web")
    assert run.code == 3, run.err
    assert _kinds(run) == [("corrupt-image", "a.qcow2")]


def test_check_names_a_missing_backing_file(scratch: Scratch, xlsnap) -> None:
    base = scratch.images / "base.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", str(base), "16M")
    top = scratch.images / "top.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(base), str(top))
    scratch.write_config([f"{top},qcow2,xvda,rw", f"{scratch.disk_b},qcow2,xvdb,rw"])
    assert xlsnap("check", "web").code == 0
    base.unlink()
    run = xlsnap("check", "--json", "web")
    assert run.code == 3, run.err
    assert _kinds(run) == [("missing-backing-file", "top.qcow2")]
    assert json.loads(run.out)[0]["backing"] == str(base)


def test_a_killed_delete_of_a_tag_kept_in_a_base_is_recovered_without_a_change(
        scratch: Scratch, xlsnap) -> None:
    assert xlsnap("snapshot-create", "-n", "s0", "web").code == 0
    _external(scratch, xlsnap, "e1")
    env = {**scratch.env(), "XLSNAP_FAULT_INJECT": "kill:1:effect"}
    assert xlsnap("snapshot-delete", "-n", "s0", "web", env=env).code == -9
    run = xlsnap("recover", "web")
    assert run.code == 0 and "finished delete" in run.out, run.err
    run = xlsnap("check", "web")
    assert run.code == 0, run.out
