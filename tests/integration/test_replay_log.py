"""Replay from the log equals the projection built incrementally, at every position;
"as of" follows commit order even when writers' clocks disagree."""

from __future__ import annotations

import hashlib
import sqlite3
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.domain import domain_ledger_id
from projections import checkpoints
from projections.replay import position_as_of_log, recheck_checkpoints, replay_domain
from projections.timeline import position_as_of
from projections.tree_view import TreeView
from tests.ledger_builder import Clock, LedgerBuilder, build_busy_ledger, fixed_clock

DOMAINS = ("web", "db")
OPS = st.lists(st.tuples(st.sampled_from(DOMAINS), st.sampled_from(
    ["create", "create", "revert", "delete", "fail"]), st.integers(0, 5)), max_size=25)


def domain_id(name: str) -> str:
    return str(domain_ledger_id(f"name:{name}"))


def play(builder: LedgerBuilder, ops: list[tuple[str, str, int]]) -> None:
    for number, (domain, kind, pick) in enumerate(ops):
        names = sorted(builder.ledger(domain).entries)
        if kind in ("revert", "delete") and names:
            getattr(builder, kind)(domain, names[pick % len(names)])
        elif kind == "fail":
            builder.fail(domain, f"f{number}")
        else:
            builder.create(domain, f"s{number}")


def assert_replay_matches_projection(ledger: Path, every: int) -> None:
    """Catch a fresh view up one event at a time; replay (with and without its
    checkpoints) must give the same rows for every domain at every position."""
    builder = LedgerBuilder(ledger)
    view = TreeView(builder.app, checkpoint_every=every)
    try:
        for position in range(0, builder.app.max_position() + 1):
            view.catch_up(until=position)
            for name in DOMAINS:
                expected = view.domain_rows(domain_id(name))
                for use in (True, False):
                    past = replay_domain(builder.app, view.db, domain_id(name), position, use)
                    assert past.tables.domain_rows(domain_id(name)) == expected, (position, use)
                    assert not past.warnings
                    past.close()
    finally:
        view.close()
        builder.close()


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(OPS)
def test_replay_at_every_position_equals_the_incremental_projection(ops) -> None:
    with tempfile.TemporaryDirectory() as folder:
        ledger = Path(folder) / "ledger.sqlite"
        builder = LedgerBuilder(ledger)
        play(builder, ops)
        builder.close()
        assert_replay_matches_projection(ledger, every=3)


@pytest.mark.sqlite_only
def test_replay_needs_no_projection_tables(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.sqlite"
    builder = build_busy_ledger(ledger, operations=30)
    view = TreeView(builder.app)
    view.catch_up()
    expected = view.domain_rows(domain_id("web"))
    view.close()
    db = sqlite3.connect(ledger)
    for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type='table' AND "
                               "name LIKE 'view_%'").fetchall():
        db.execute(f"DROP TABLE {table}")
    db.commit()
    past = replay_domain(builder.app, db, domain_id("web"), builder.app.max_position())
    assert past.tables.domain_rows(domain_id("web")) == expected
    builder.close()


def test_as_of_is_the_longest_prefix_stamped_no_later(tmp_path: Path) -> None:
    clock = Clock(step=timedelta(seconds=10))
    with fixed_clock(clock):
        builder = LedgerBuilder(tmp_path / "ledger.sqlite")
        builder.create("web", "a")       # positions 1..6
        clock.jump(timedelta(hours=1))
        builder.create("web", "b")       # 7..11, stamped an hour later
        clock.jump(timedelta(minutes=-30))
        builder.create("db", "c")        # 12..17: a writer whose clock is behind
        builder.create("web", "d")       # 18..
    view = TreeView(builder.app)
    view.catch_up()
    stamps = [e.timestamp.timestamp() for _, e in builder.app.iter_log()]
    late = stamps[11]                     # the first event of "c"
    assert late < stamps[10]
    # Stamped before the hour jump, yet committed after events stamped later: not in.
    assert position_as_of(view.db, late) == 6
    for when in sorted(set(stamps)) + [stamps[0] - 1, stamps[-1] + 1]:
        assert position_as_of(view.db, when) == position_as_of_log(builder.app, view.db, when)
    view.close()
    builder.close()


def test_a_damaged_checkpoint_is_skipped_and_deep_verify_finds_a_forged_one(
        tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.sqlite"
    builder = build_busy_ledger(ledger, operations=40)
    view = TreeView(builder.app, checkpoint_every=4)
    view.catch_up()
    web = domain_id("web")
    expected = view.domain_rows(web)
    size = builder.app.max_position()
    point = checkpoints.latest(view.db, web, size)
    assert point is not None and recheck_checkpoints(builder.app, view.db) == []
    view.db.execute("UPDATE view_checkpoints SET state=? WHERE domain_id=? AND position=?",
                    (point.state[:-1] + b"x", web, point.position))
    past = replay_domain(builder.app, view.db, web, size)
    assert past.checkpoint is None and "does not match its digest" in past.warnings[0]
    assert past.tables.domain_rows(web) == expected
    forged = checkpoints.capture(past.tables.db.cursor(), web)  # a later state, re-digested
    view.db.execute("UPDATE view_checkpoints SET state=?, digest=? WHERE domain_id=? AND "
                    "position=?", (forged, hashlib.sha256(forged).digest(), web,
                                   checkpoints.all_checkpoints(view.db)[0].position))
    problems = recheck_checkpoints(builder.app, view.db)
    assert any("differs from the state derived from the log" in p for p in problems)
    view.close()
    builder.close()
