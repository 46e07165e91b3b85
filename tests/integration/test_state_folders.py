"""The home, the ledger's folder and the ledger file: never re-moded, refused when unsafe.

Every test runs the real CLI as root against scratch folders whose mode and owner it set
itself (uid 65534 stands for another user), and then reads the folders' modes and the
ledger file back.
"""

from __future__ import annotations

import pytest

import os
import sqlite3
import stat
from contextlib import closing
from pathlib import Path

from tests.conftest import Scratch, read_pattern, tags, write_pattern

NOBODY = 65534
DAEMON_GID = 1


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def one_error_line(run, code: int, *fragments: str) -> str:
    assert run.code == code, f"exit {run.code}: {run.err!r} {run.out!r}"
    assert "Traceback" not in run.err
    lines = run.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("xlsnap: error: "), run.err
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    return lines[0]


# ---- item 3: an existing folder keeps its mode -----------------------------------------


@pytest.mark.sqlite_only
def test_an_existing_home_keeps_its_mode_on_read_only_and_writing_commands(
        scratch: Scratch, xlsnap) -> None:
    scratch.home.mkdir()
    os.chmod(scratch.home, 0o755)
    assert xlsnap("snapshot-list", "web").code == 0
    assert mode(scratch.home) == 0o755
    assert xlsnap("snapshot-create", "-n", "s1", "web").code == 0
    assert mode(scratch.home) == 0o755
    assert mode(scratch.domain_dir) == 0o700 and mode(scratch.ledger) == 0o600


def test_a_home_writable_by_its_group_is_refused_naming_its_mode_and_left_as_it_was(
        scratch: Scratch, xlsnap) -> None:
    scratch.home.mkdir()
    os.chown(scratch.home, 0, DAEMON_GID)
    os.chmod(scratch.home, 0o2775)
    for argv in (["snapshot-list", "web"], ["snapshot-create", "-n", "s1", "web"]):
        one_error_line(xlsnap(*argv), 2, f"unsafe home folder {scratch.home} (mode 2775",
                       "writable by others")
    assert mode(scratch.home) == 0o2775 and os.stat(scratch.home).st_gid == DAEMON_GID
    assert list(scratch.home.iterdir()) == [] and tags(scratch.disk_a) == []


def test_a_created_home_is_private_and_its_missing_parents_are_not_shared(
        scratch: Scratch, xlsnap) -> None:
    home = scratch.root / "var" / "lib" / "xlsnap"
    run = xlsnap("--home", str(home), "snapshot-create", "-n", "s1", "web")
    assert run.code == 0, run.err
    assert mode(home) == 0o700 and mode(home.parent) & 0o022 == 0


# ---- item 11: a home or ledger folder of someone else ----------------------------------


def test_a_home_owned_by_another_user_is_refused(scratch: Scratch, xlsnap) -> None:
    assert xlsnap("snapshot-create", "-n", "s1", "web").code == 0
    os.chown(scratch.home, NOBODY, NOBODY)
    for argv in (["snapshot-list", "web"], ["snapshot-create", "-n", "s2", "web"],
                 ["snapshot-delete", "-n", "s1", "web"]):
        one_error_line(xlsnap(*argv), 2, f"unsafe home folder {scratch.home}",
                       f"uid {NOBODY}", "belongs to another user")
    assert tags(scratch.disk_a) == ["s1"] and os.stat(scratch.home).st_uid == NOBODY


def test_a_ledger_folder_writable_by_others_or_owned_by_another_user_is_refused(
        scratch: Scratch, xlsnap) -> None:
    shared = scratch.root / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    ledger = shared / "ledger.sqlite"
    one_error_line(xlsnap("--ledger", str(ledger), "snapshot-create", "-n", "s1", "web"), 2,
                   f"unsafe ledger folder {shared} (mode 0777")
    os.chmod(shared, 0o755)
    os.chown(shared, NOBODY, NOBODY)
    one_error_line(xlsnap("--ledger", str(ledger), "snapshot-create", "-n", "s1", "web"), 2,
                   f"unsafe ledger folder {shared}", "belongs to another user")
    assert not ledger.exists() and tags(scratch.disk_a) == []


def test_a_folder_above_the_home_that_others_may_write_is_refused_unless_sticky(
        scratch: Scratch, xlsnap) -> None:
    above = scratch.root / "above"
    above.mkdir()
    os.chmod(above, 0o777)
    home = above / "home"
    one_error_line(xlsnap("--home", str(home), "snapshot-create", "-n", "s1", "web"), 2,
                   f"unsafe folder above {home}: {above} (mode 0777")
    os.chmod(above, 0o1777)  # like /tmp: nobody else can move the home away
    run = xlsnap("--home", str(home), "snapshot-create", "-n", "s1", "web")
    assert run.code == 0, run.err
    assert mode(above) == 0o1777 and mode(home) == 0o700


# ---- item 23: a query never creates the ledger -----------------------------------------


@pytest.mark.sqlite_only
def test_read_only_commands_create_neither_home_nor_ledger(scratch: Scratch, xlsnap) -> None:
    one_error_line(xlsnap("snapshot-list", "nosuch"), 2, "unknown domain 'nosuch'")
    for argv in (["snapshot-list", "web"], ["history"], ["check", "web"]):
        run = xlsnap(*argv)
        assert run.code == 0, (argv, run.err)
    assert not scratch.home.exists()
    scratch.home.mkdir(mode=0o700)
    assert xlsnap("snapshot-list", "web").code == 0
    one_error_line(xlsnap("snapshot-list", "nosuch"), 2, "unknown domain 'nosuch'")
    assert list(scratch.home.iterdir()) == []
    run = xlsnap("snapshot-create", "-n", "s1", "web")  # the first change makes the ledger
    assert run.code == 0 and scratch.ledger.exists()
    assert "s1" in xlsnap("snapshot-list", "web").out


# ---- item 27: not a ledger, or a ledger gone -------------------------------------------


@pytest.mark.sqlite_only
def test_a_foreign_sqlite_file_is_not_an_xlsnap_ledger_and_is_left_untouched(
        scratch: Scratch, xlsnap) -> None:
    scratch.home.mkdir(mode=0o700)
    with closing(sqlite3.connect(scratch.ledger)) as db:
        db.execute("CREATE TABLE people (name TEXT)")
        db.execute("INSERT INTO people VALUES ('alice')")
        db.commit()
    before = scratch.ledger.read_bytes()
    for argv in (["snapshot-list", "web"], ["snapshot-create", "-n", "s1", "web"],
                 ["history"]):
        one_error_line(xlsnap(*argv), 2, f"not an xlsnap ledger: {scratch.ledger}")
    assert scratch.ledger.read_bytes() == before and tags(scratch.disk_a) == []


@pytest.mark.sqlite_only
def test_a_file_that_is_not_sqlite_is_not_an_xlsnap_ledger(scratch: Scratch, xlsnap) -> None:
    scratch.home.mkdir(mode=0o700)
    scratch.ledger.write_text("hello\n" * 200)
    for argv in (["snapshot-list", "web"], ["snapshot-create", "-n", "s1", "web"]):
        one_error_line(xlsnap(*argv), 2, f"not an xlsnap ledger: {scratch.ledger}",
                       "not an SQLite database")
    assert scratch.ledger.read_text() == "hello\n" * 200


@pytest.mark.sqlite_only
def test_a_deleted_ledger_is_named_missing_and_only_started_again_on_request(
        scratch: Scratch, xlsnap) -> None:
    write_pattern(scratch.disk_a, 0xAA)
    assert xlsnap("snapshot-create", "-n", "s1", "web").code == 0
    write_pattern(scratch.disk_a, 0xBB)
    scratch.ledger.unlink()
    for argv in (["snapshot-list", "web"], ["snapshot-create", "-n", "s2", "web"],
                 ["snapshot-revert", "-n", "s1", "web"], ["history"]):
        one_error_line(xlsnap(*argv), 3, f"ledger missing: expected at {scratch.ledger}",
                       scratch.uuid, "written since 20", "--new-ledger")
        assert not scratch.ledger.exists()
    assert tags(scratch.disk_a) == ["s1"] and read_pattern(scratch.disk_a, 0xBB)
    run = xlsnap("--new-ledger", "snapshot-create", "-n", "s2", "web")
    assert run.code == 0, run.err
    assert tags(scratch.disk_a) == ["s1", "s2"] and read_pattern(scratch.disk_a, 0xBB)
    assert "s2" in xlsnap("snapshot-list", "web").out
