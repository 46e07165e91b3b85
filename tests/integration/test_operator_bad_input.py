"""Issue 13's bad input: one line naming the problem, exit 2, and nothing changed: the
ledger's event count, every tag, every snapshot's content on both disks, the current
disks and the metadata files are as they were."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.conftest import Run, Scratch, read_pattern, tag_reads, tags, write_pattern
from tests.e2e.test_bad_input import event_count

Xlsnap = Callable[..., Run]

CASES = [
    (("snapshot-info", "web", "zz"), "no snapshot named 'zz'"),
    (("snapshot-parent", "web", "zz"), "no snapshot named 'zz'"),
    (("snapshot-current", "web", "zz"), "no snapshot named 'zz'"),
    (("snapshot-list", "--from", "zz", "web"), "no snapshot named 'zz'"),
    (("snapshot-edit", "web", "zz", "--rename", "x"), "no snapshot named 'zz'"),
    (("snapshot-delete", "-n", "zz", "web"), "no snapshot named 'zz'"),
    (("snapshot-hold", "web", "zz", "audit"), "no snapshot named 'zz'"),
    (("snapshot-holds", "web", "zz"), "no snapshot named 'zz'"),
    (("snapshot-info", "nosuch", "s0"), "nosuch"),
    (("prune", "--keep-last", "1", "nosuch"), "nosuch"),
    (("snapshot-edit", "web", "s0", "--rename", "s1"), "already has a snapshot named 's1'"),
    (("snapshot-hold", "web", "s0", ""), "hold tag is empty"),
    (("snapshot-hold", "web", "s0", "   "), "hold tag is empty"),
    (("snapshot-hold", "web", "s0", "x" * 300), "hold tag is too long"),
    (("snapshot-hold", "web", "s1", "audit"), "already has a hold 'audit'"),
    (("snapshot-release", "web", "s0", "audit"), "has no hold 'audit'"),
    (("snapshot-release", "web", "s1", "other"), "has no hold 'other'"),
    (("snapshot-delete", "-n", "s1", "web"), "held (audit)"),
    (("prune", "web"), "no keep rule"),
    (("prune", "--keep-within", "1s", "web"), "keep no snapshot"),
]


@pytest.mark.parametrize("argv, words", CASES, ids=[" ".join(a)[:40] for a, _ in CASES])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(
        scratch: Scratch, xlsnap: Xlsnap, argv: tuple[str, ...], words: str) -> None:
    for k in range(3):
        write_pattern(scratch.disk_a, 0x50 + k)
        write_pattern(scratch.disk_b, 0x70 + k)
        assert xlsnap("snapshot-create", "-n", f"s{k}", "web").code == 0
    assert xlsnap("snapshot-hold", "web", "s1", "audit").code == 0
    write_pattern(scratch.disk_a, 0x5F)
    write_pattern(scratch.disk_b, 0x7F)
    before = (event_count(scratch.ledger), tags(scratch.disk_a), tags(scratch.disk_b),
              scratch.snapshot_files())
    if "--keep-within" in argv:
        time.sleep(1.2)  # every snapshot older than the 1 s window, however fast the host
    run = xlsnap(*argv)
    assert run.code == 2, (run.code, run.err)
    assert words in run.err, run.err
    assert len(run.err.strip().splitlines()) == 1, run.err
    assert "Traceback" not in run.err
    assert (event_count(scratch.ledger), tags(scratch.disk_a), tags(scratch.disk_b),
            scratch.snapshot_files()) == before
    for k in range(3):
        assert tag_reads(scratch.disk_a, f"s{k}", 0x50 + k)
        assert tag_reads(scratch.disk_b, f"s{k}", 0x70 + k)
    assert read_pattern(scratch.disk_a, 0x5F) and read_pattern(scratch.disk_b, 0x7F)
