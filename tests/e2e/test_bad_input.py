"""Bad input is refused with one line on stderr, exit code 2, and nothing changed.

Every test runs the real CLI against the scratch domain ``web`` and compares, before
and after the refused call: the ledger's event count, every image in the images
folder (format, internal snapshot tags, backing file), every file in the config
folder (byte for byte) and the files in the domain's xlsnap folder.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import Run, Scratch, image_info, qemu_img

Xlsnap = Callable[..., Run]
USAGE_EXIT = 2
ERROR_PREFIX = "xlsnap: error: "


# ---- state before and after -------------------------------------------------------


@dataclass(frozen=True)
class Image:
    """What matters of one disk image: its format, its tags and its backing file."""

    format: str
    tags: tuple[str, ...]
    backing: str | None


@dataclass(frozen=True)
class State:
    """Everything a refused command must leave as it was."""

    events: int
    images: dict[str, Image]
    configs: dict[str, bytes]
    snapshot_files: list[str]


def event_count(ledger: Path) -> int:
    """Rows in the ledger's event table; 0 when there is no ledger yet. With the suite on
    PostgreSQL (the scratch fixture sets ``XLSNAP_LEDGER``) the server's table is counted."""
    url = os.environ.get("XLSNAP_LEDGER", "")
    if not ledger.exists() and url.startswith("postgresql:"):
        import psycopg

        with psycopg.connect(url, autocommit=True) as db:
            found = db.execute("SELECT to_regclass('xlsnap_events')").fetchone()
            if not found or found[0] is None:
                return 0
            row = db.execute("SELECT COUNT(*) FROM xlsnap_events").fetchone()
            return int(row[0]) if row else 0
    if not ledger.exists():
        return 0
    with closing(sqlite3.connect(f"{ledger.as_uri()}?mode=ro", uri=True)) as db:
        try:
            return int(db.execute("SELECT COUNT(*) FROM stored_events").fetchone()[0])
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return 0
            raise


def read_image(path: Path) -> Image:
    info = image_info(path)
    return Image(
        format=info["format"],
        tags=tuple(s["name"] for s in info.get("snapshots", [])),
        backing=info.get("full-backing-filename") or info.get("backing-filename"),
    )


def capture(scratch: Scratch) -> State:
    """The ledger, the disks, the config files and the domain folder, as they are now."""
    return State(
        events=event_count(scratch.ledger),
        images={p.name: read_image(p) for p in sorted(scratch.images.iterdir()) if p.is_file()},
        configs={p.name: p.read_bytes() for p in sorted(scratch.config_dir.iterdir())},
        snapshot_files=scratch.snapshot_files(),
    )


def assert_refused(run: Run, scratch: Scratch, before: State, *fragments: str) -> str:
    """Check a refusal: exit 2, one ``xlsnap: error:`` line naming the problem, no change.

    ``fragments`` must all appear in the message; returns the message.
    """
    assert run.code == USAGE_EXIT, f"exit {run.code}, stdout {run.out!r}, stderr {run.err!r}"
    assert "Traceback" not in run.err, run.err
    lines = run.err.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}: {run.err!r}"
    message = lines[0]
    assert message.startswith(ERROR_PREFIX), message
    assert run.out == "", f"nothing should be printed on stdout, got {run.out!r}"
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    after = capture(scratch)
    assert after.events == before.events, "the ledger changed"
    assert after.images == before.images, "the disks changed"
    assert after.configs == before.configs, "the config files changed"
    assert after.snapshot_files == before.snapshot_files, "the domain folder changed"
    return message


def take_good_snapshot(xlsnap: Xlsnap, name: str = "good") -> None:
    """One successful snapshot, so that the ledger and the disks are not empty."""
    run = xlsnap("snapshot-create", "-n", name, "web")
    assert run.code == 0, run.err


def write_raw_disk(scratch: Scratch, name: str = "c.raw") -> Path:
    """A 16 MiB raw image in the images folder."""
    path = scratch.images / name
    qemu_img("create", "-q", "-f", "raw", str(path), "16M")
    return path


def write_snapshot_cfg(scratch: Scratch, body: str) -> Path:
    """A snapshot config file (second positional argument) outside the config folder."""
    path = scratch.root / "snap.cfg"
    path.write_text(body)
    return path


# ---- the domain --------------------------------------------------------------------


@pytest.mark.parametrize("argv", [
    ["snapshot-create", "nosuch"],
    ["snapshot-list", "nosuch"],
    ["snapshot-delete", "-n", "good", "nosuch"],
    ["snapshot-revert", "-n", "good", "nosuch"],
], ids=["create", "list", "delete", "revert"])
def test_unknown_domain_is_refused(scratch: Scratch, xlsnap: Xlsnap, argv: list[str]) -> None:
    """A domain without a config file is unknown to every command."""
    take_good_snapshot(xlsnap)
    before = capture(scratch)
    assert_refused(xlsnap(*argv), scratch, before, "unknown domain 'nosuch'")


@pytest.mark.parametrize("domain", ["../web", "..", "sub/web", "/etc/web", "web/.."])
def test_domain_name_with_path_parts_is_refused(
    scratch: Scratch, xlsnap: Xlsnap, domain: str
) -> None:
    """A domain name is a config file's stem: no ``/``, no ``..`` (checked on an empty ledger)."""
    (scratch.root / "web.cfg").write_bytes(scratch.config.read_bytes())  # reachable as ../web
    before = capture(scratch)
    assert_refused(xlsnap("snapshot-create", domain), scratch, before,
                   f"invalid domain name {domain!r}")


# ---- the domain's config file ------------------------------------------------------


def test_config_without_name_is_refused(scratch: Scratch, xlsnap: Xlsnap) -> None:
    """A domain config must say which domain it is."""
    take_good_snapshot(xlsnap)
    text = scratch.config.read_text()
    scratch.config.write_text("\n".join(line for line in text.splitlines()
                                        if not line.startswith("name")) + "\n")
    before = capture(scratch)
    assert_refused(xlsnap("snapshot-create", "-n", "next", "web"), scratch, before,
                   str(scratch.config), "no 'name' setting")


@pytest.mark.parametrize("bad_line, problem", [
    ('memory = "512', "unterminated string"),
    ("this is not a setting", "expected '=' after 'this'"),
], ids=["unterminated-string", "garbage-line"])
def test_malformed_config_is_refused_quoting_the_line(
    scratch: Scratch, xlsnap: Xlsnap, bad_line: str, problem: str
) -> None:
    """A syntax error names the file and line number and quotes the line."""
    take_good_snapshot(xlsnap)
    lines = scratch.config.read_text().splitlines()
    lines[2] = bad_line  # line 3, in place of "memory = 512"
    scratch.config.write_text("\n".join(lines) + "\n")
    before = capture(scratch)
    assert_refused(xlsnap("snapshot-create", "-n", "next", "web"), scratch, before,
                   f"{scratch.config}:3:", problem, repr(bad_line))


def test_config_naming_another_domain_is_refused(scratch: Scratch, xlsnap: Xlsnap) -> None:
    """``web.cfg`` whose ``name`` is ``db`` is not web's config."""
    take_good_snapshot(xlsnap)
    scratch.config.write_text(scratch.config.read_text().replace('name = "web"', 'name = "db"'))
    before = capture(scratch)
    assert_refused(xlsnap("snapshot-create", "-n", "next", "web"), scratch, before,
                   f"{scratch.config}:1:", "'db'")


def test_invalid_uuid_is_refused(scratch: Scratch, xlsnap: Xlsnap) -> None:
    """The uuid keys the ledger; a malformed one is refused, not hashed or ignored."""
    take_good_snapshot(xlsnap)
    scratch.config.write_text(scratch.config.read_text().replace(scratch.uuid, "not-a-uuid"))
    before = capture(scratch)
    assert_refused(xlsnap("snapshot-create", "-n", "next", "web"), scratch, before,
                   f"{scratch.config}:2:", "invalid uuid 'not-a-uuid'")


# ---- snapshot names ----------------------------------------------------------------


@pytest.mark.parametrize("name, problem", [
    ("", "empty"),
    ("x" * 65, "too long"),
    ("a/b", "path separator"),
    ("a..b", "'..'"),
    ("..", "'..'"),
    ("a\x01b", "control characters"),
    ("a\tb", "control characters"),
    ("xlsnap-mine", "reserved prefix"),
], ids=["empty", "65-chars", "slash", "dot-dot-inside", "dot-dot", "ctrl-A", "tab",
        "reserved-prefix"])
def test_invalid_snapshot_name_is_refused(
    scratch: Scratch, xlsnap: Xlsnap, name: str, problem: str
) -> None:
    """Names become qcow2 tags and file names, so bad ones never reach the disks."""
    take_good_snapshot(xlsnap)
    before = capture(scratch)
    assert_refused(xlsnap("snapshot-create", "-n", name, "web"), scratch, before, problem)


def test_empty_name_in_snapshot_config_is_refused(scratch: Scratch, xlsnap: Xlsnap) -> None:
    """``name = ""`` in a snapshot config is an empty name, not "no name given"."""
    take_good_snapshot(xlsnap)
    cfg = write_snapshot_cfg(scratch, 'name = ""\n')
    before = capture(scratch)
    assert_refused(xlsnap("snapshot-create", "web", str(cfg)), scratch, before, "empty")


def test_existing_snapshot_name_is_refused(scratch: Scratch, xlsnap: Xlsnap) -> None:
    """A name the ledger knows already cannot be taken twice."""
    take_good_snapshot(xlsnap)
    before = capture(scratch)
    assert_refused(xlsnap("snapshot-create", "-n", "good", "web"), scratch, before,
                   "already has a snapshot named 'good'")


def test_name_of_a_hand_made_qcow2_tag_is_refused(scratch: Scratch, xlsnap: Xlsnap) -> None:
    """A tag made outside xlsnap still blocks the name: qemu-img would duplicate it."""
    take_good_snapshot(xlsnap)
    qemu_img("snapshot", "-c", "foo", str(scratch.disk_a))
    before = capture(scratch)
    assert_refused(xlsnap("snapshot-create", "-n", "foo", "web"), scratch, before,
                   "'xvda'", "already has a snapshot tag 'foo'")


# ---- unknown snapshots -------------------------------------------------------------


@pytest.mark.parametrize("command", ["snapshot-delete", "snapshot-revert"])
def test_unknown_snapshot_is_refused(scratch: Scratch, xlsnap: Xlsnap, command: str) -> None:
    """Deleting or reverting a snapshot the ledger does not have changes nothing."""
    take_good_snapshot(xlsnap)
    before = capture(scratch)
    assert_refused(xlsnap(command, "-n", "nosuch", "web"), scratch, before,
                   "has no snapshot named 'nosuch'")


def test_long_listing_of_unknown_snapshot_is_refused(scratch: Scratch, xlsnap: Xlsnap) -> None:
    """``snapshot-list -l web nosuch`` is an error, not an empty listing."""
    take_good_snapshot(xlsnap)
    before = capture(scratch)
    assert_refused(xlsnap("snapshot-list", "-l", "web", "nosuch"), scratch, before,
                   "has no snapshot named 'nosuch'")


# ---- the domain's disks ------------------------------------------------------------


def test_internal_snapshot_of_raw_disk_is_refused(scratch: Scratch, xlsnap: Xlsnap) -> None:
    """The default snapshot is internal, which a raw disk cannot hold."""
    take_good_snapshot(xlsnap)
    raw = write_raw_disk(scratch)
    scratch.write_config([f"{scratch.disk_a},qcow2,xvda,rw", f"{raw},raw,xvdb,rw"])
    before = capture(scratch)
    assert_refused(xlsnap("snapshot-create", "-n", "next", "web"), scratch, before,
                   "'xvdb'", "internal snapshots need qcow2")


def test_missing_disk_image_is_refused(scratch: Scratch, xlsnap: Xlsnap) -> None:
    """A disk whose image file is gone is reported before anything is done."""
    take_good_snapshot(xlsnap)
    scratch.disk_b.unlink()
    before = capture(scratch)
    assert_refused(xlsnap("snapshot-create", "-n", "next", "web"), scratch, before,
                   "'xvdb'", f"{scratch.disk_b} is missing")


def test_config_format_that_differs_from_the_image_is_refused(
    scratch: Scratch, xlsnap: Xlsnap
) -> None:
    """A config saying qcow2 for a raw image is refused, not trusted."""
    take_good_snapshot(xlsnap)
    raw = write_raw_disk(scratch)
    scratch.write_config([f"{scratch.disk_a},qcow2,xvda,rw", f"{raw},qcow2,xvdb,rw"])
    before = capture(scratch)
    assert_refused(xlsnap("snapshot-create", "-n", "next", "web"), scratch, before,
                   "'xvdb'", "config says format qcow2", "is raw")


# ---- the snapshot config file ------------------------------------------------------


def test_snapshot_config_listing_an_unknown_disk_is_refused(
    scratch: Scratch, xlsnap: Xlsnap
) -> None:
    """Asking for a disk the domain does not have is an error, not a no-op."""
    take_good_snapshot(xlsnap)
    cfg = write_snapshot_cfg(scratch, f"disk = ['hdz={scratch.images / 'x.qcow2'}']\n")
    before = capture(scratch)
    assert_refused(xlsnap("snapshot-create", "-n", "next", "web", str(cfg)), scratch, before,
                   "has no disk 'hdz'")


@pytest.mark.parametrize("overlay, problem", [
    ("{images}/taken.qcow2", "exists already"),
    ("{images}/nodir/o.qcow2", "does not exist"),
    ("o.qcow2", "absolute path"),
], ids=["exists", "folder-missing", "relative"])
def test_bad_overlay_path_is_refused(
    scratch: Scratch, xlsnap: Xlsnap, overlay: str, problem: str
) -> None:
    """An external snapshot's overlay must be a new file, absolute, in an existing folder."""
    take_good_snapshot(xlsnap)
    qemu_img("create", "-q", "-f", "qcow2", str(scratch.images / "taken.qcow2"), "1M")
    path = overlay.format(images=scratch.images)
    cfg = write_snapshot_cfg(scratch, f"disk = ['xvdb={path}']\n")
    before = capture(scratch)
    assert_refused(xlsnap("snapshot-create", "-n", "next", "web", str(cfg)), scratch, before,
                   problem)


def test_memory_state_of_a_stopped_domain_is_refused(scratch: Scratch, xlsnap: Xlsnap) -> None:
    """``memory="yes"`` asks for memory a stopped domain does not have."""
    take_good_snapshot(xlsnap)
    cfg = write_snapshot_cfg(scratch, 'memory = "yes"\n')
    before = capture(scratch)
    assert_refused(xlsnap("snapshot-create", "-n", "next", "web", str(cfg)), scratch, before,
                   "not running")


@pytest.mark.parametrize("body, line, problem", [
    ('name = "next\n', 1, "unterminated string"),
    ('type = "external"\nthis is garbage\n', 2, "expected '=' after 'this'"),
], ids=["unterminated-string", "garbage-line"])
def test_malformed_snapshot_config_is_refused_quoting_the_line(
    scratch: Scratch, xlsnap: Xlsnap, body: str, line: int, problem: str
) -> None:
    """A syntax error in the snapshot config names its file and line and quotes the line."""
    take_good_snapshot(xlsnap)
    cfg = write_snapshot_cfg(scratch, body)
    before = capture(scratch)
    quoted = repr(body.splitlines()[line - 1])
    assert_refused(xlsnap("snapshot-create", "web", str(cfg)), scratch, before,
                   f"{cfg}:{line}:", problem, quoted)


def test_missing_snapshot_config_is_refused(scratch: Scratch, xlsnap: Xlsnap) -> None:
    """A snapshot config path that does not exist is an error, not 'no config'."""
    take_good_snapshot(xlsnap)
    missing = scratch.root / "nosuch.cfg"
    before = capture(scratch)
    assert_refused(xlsnap("snapshot-create", "-n", "next", "web", str(missing)), scratch,
                   before, "not found", str(missing))
