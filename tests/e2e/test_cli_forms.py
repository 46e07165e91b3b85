"""The CLI's forms: names by -n or position, one-line errors, no silent no-ops."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator

import pytest

from tests.conftest import Run, Scratch, held_open, read_pattern, tags, write_pattern
from tests.e2e.test_bad_input import event_count

Xlsnap = Callable[..., Run]


@pytest.fixture
def two_snapshots(scratch: Scratch, xlsnap: Xlsnap) -> Scratch:
    write_pattern(scratch.disk_a, 0x11)
    assert xlsnap("snapshot-create", "-n", "one", "web").code == 0
    write_pattern(scratch.disk_a, 0x22)
    assert xlsnap("snapshot-create", "-n", "two", "web").code == 0
    write_pattern(scratch.disk_a, 0x33)
    return scratch


@pytest.mark.parametrize("form", [("-n", "one", "web"), ("web", "one"), ("web", "-n", "one")])
def test_revert_takes_the_name_by_option_or_position(two_snapshots: Scratch, xlsnap: Xlsnap,
                                                     form: tuple[str, ...]) -> None:
    run = xlsnap("snapshot-revert", *form)
    assert run.code == 0, run.err
    assert read_pattern(two_snapshots.disk_a, 0x11)


def test_delete_takes_the_name_by_position(two_snapshots: Scratch, xlsnap: Xlsnap) -> None:
    run = xlsnap("snapshot-delete", "web", "one")
    assert run.code == 0, run.err
    assert tags(two_snapshots.disk_a) == ["two"]


@pytest.mark.parametrize("command", ["snapshot-revert", "snapshot-delete"])
def test_two_different_names_are_refused(two_snapshots: Scratch, xlsnap: Xlsnap,
                                         command: str) -> None:
    before = event_count(two_snapshots.ledger)
    run = xlsnap(command, "-n", "one", "web", "two")
    assert run.code == 2 and "two snapshot names given" in run.err
    assert event_count(two_snapshots.ledger) == before
    assert tags(two_snapshots.disk_a) == ["one", "two"]
    assert read_pattern(two_snapshots.disk_a, 0x33)


@pytest.mark.parametrize("command", ["snapshot-revert", "snapshot-delete"])
def test_no_name_is_refused(two_snapshots: Scratch, xlsnap: Xlsnap, command: str) -> None:
    run = xlsnap(command, "web")
    assert run.code == 2 and "no snapshot name given" in run.err


def test_list_long_takes_the_name_by_option_too(two_snapshots: Scratch, xlsnap: Xlsnap) -> None:
    by_position = xlsnap("snapshot-list", "-l", "web", "one")
    by_option = xlsnap("snapshot-list", "-l", "-n", "one", "web")
    assert by_position.code == by_option.code == 0
    assert by_position.out == by_option.out and '"name": "one"' in by_option.out


def test_adopt_takes_the_tag_by_option_too(scratch: Scratch, xlsnap: Xlsnap) -> None:
    for disk in (scratch.disk_a, scratch.disk_b):
        subprocess.run(["qemu-img", "snapshot", "-c", "manual", str(disk)], check=True)
    run = xlsnap("adopt", "-n", "manual", "web")
    assert run.code == 0, run.err
    assert "manual" in xlsnap("snapshot-list", "web").out


def test_list_long_with_tree_is_refused(two_snapshots: Scratch, xlsnap: Xlsnap) -> None:
    run = xlsnap("snapshot-list", "-l", "--tree", "web")
    assert run.code == 2 and "-l and --tree" in run.err


def test_an_unknown_history_kind_is_refused(two_snapshots: Scratch, xlsnap: Xlsnap) -> None:
    run = xlsnap("history", "--kind", "bogus")
    assert run.code == 2 and "unknown --kind 'bogus'" in run.err
    assert xlsnap("history", "--kind", "create").out.count("create") > 0


@pytest.mark.parametrize("command", ["history", "export"])
def test_until_before_since_is_refused(two_snapshots: Scratch, xlsnap: Xlsnap,
                                       command: str) -> None:
    run = xlsnap(command, "--since", "2h", "--until", "3h")
    assert run.code == 2 and "is before --since" in run.err, run.err


def test_did_you_mean_is_said_once(scratch: Scratch, xlsnap: Xlsnap) -> None:
    run = xlsnap("snapshot-lst", "web")
    assert run.code == 2
    assert run.err.lower().count("did you mean") == 1


def test_diff_help_promises_renames_now_that_snapshot_edit_makes_them(xlsnap: Xlsnap) -> None:
    assert "renamed" in xlsnap("diff", "--help").out
    assert "snapshot-edit" in xlsnap("--help").out


@pytest.fixture
def locked_disk(scratch: Scratch) -> Iterator[Scratch]:
    """Disk a held open for writing by another process (qemu-io), as a running VM would."""
    with held_open(scratch.disk_a):
        yield scratch


def test_a_tools_multi_line_error_is_one_line_unless_verbose(locked_disk: Scratch,
                                                             xlsnap: Xlsnap) -> None:
    # qemu-img says 'Failed to get "write" lock' and 'Is another process using the image'
    run = xlsnap("snapshot-create", "-n", "s", "web")
    assert run.code == 1
    assert len(run.err.strip().splitlines()) == 1, run.err
    assert 'Failed to get "write" lock' in run.err and "nothing changed" in run.err
    verbose = xlsnap("--verbose", "snapshot-create", "-n", "s", "web")
    assert "Is another process using the image" not in run.err
    assert "(more with --verbose)" in run.err
    assert verbose.code == 1 and "Is another process using the image" in verbose.err


def test_a_default_name_taken_this_second_gets_a_suffix(scratch: Scratch,
                                                       xlsnap: Xlsnap) -> None:
    import time

    from commands.handlers.create import create_snapshot
    from commands.handlers.messages import CreateSnapshot

    now = int(time.time())
    svc = scratch.services()
    try:          # this second's default name and the next 15 are taken already
        for second in range(now, now + 16):
            create_snapshot(CreateSnapshot("web", name=str(second)), svc)
    finally:
        svc.close()
    run = xlsnap("snapshot-create", "web")
    assert run.code == 0, run.err
    name = run.out.split()[1]
    base, _, suffix = name.partition("-")
    assert now <= int(base) < now + 16 and suffix == "2", name
    assert name in tags(scratch.disk_a) and name in tags(scratch.disk_b)
