"""The time index: filters select the same events a scan of the log would, and a view
projected before the index existed is rebuilt with it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from ledger.domain import domain_ledger_id
from projections.timeline import operations_at, position_range, select_positions
from projections.tree_view import TreeView
from tests.ledger_builder import ACTOR, Clock, LedgerBuilder, fixed_clock


def build(path: Path) -> tuple[LedgerBuilder, TreeView, list]:
    clock = Clock(step=timedelta(minutes=1))
    with fixed_clock(clock):
        builder = LedgerBuilder(path)
        builder.create("web", "a")
        builder.actor = {**ACTOR, "user": "root", "sudo_user": "bob", "uid": 0}
        builder.create("db", "b")
        builder.revert("web", "a")
        builder.actor = dict(ACTOR)
        builder.delete("db", "b")
        builder.fail("web", "c")
    view = TreeView(builder.app)
    view.catch_up()
    return builder, view, list(builder.app.iter_log())


def test_filters_match_a_scan_of_the_log(tmp_path: Path) -> None:
    builder, view, log = build(tmp_path / "l.sqlite")
    ops = operations_at(view.db, [p for p, _ in log])
    kind_of = {p: ops[p][1] for p, _ in log}

    def scan(pred) -> list[int]:
        return [p for p, e in log if pred(p, e)]

    web = str(domain_ledger_id("name:web"))
    assert select_positions(view.db, domain_id=web) == scan(
        lambda p, e: str(e.originator_id) == web)
    assert select_positions(view.db, actor="bob") == scan(
        lambda p, e: e.actor.get("sudo_user") == "bob")
    assert select_positions(view.db, actor="0") == select_positions(view.db, actor="root")
    assert select_positions(view.db, kind="revert") == scan(lambda p, e: kind_of[p] == "revert")
    assert select_positions(view.db, kind="delete", domain_id=web) == []
    middle = log[len(log) // 2][1].timestamp.timestamp()
    assert select_positions(view.db, since=middle) == scan(
        lambda p, e: e.timestamp.timestamp() >= middle)
    assert select_positions(view.db, until=middle) == scan(
        lambda p, e: e.timestamp.timestamp() <= middle)
    first, last = position_range(view.db, middle + 10_000, None)
    assert first > last
    assert ops[1][0] == ops[2][0]  # the Registered event belongs to the first operation
    view.close()
    builder.close()


def test_a_view_without_the_index_is_rebuilt_with_it(tmp_path: Path) -> None:
    builder, view, log = build(tmp_path / "l.sqlite")
    before = view.dump()
    view.db.execute("DELETE FROM view_timeline")
    view.close()
    again = TreeView(builder.app)
    assert again.catch_up() == len(log)
    assert again.dump() == before
    again.close()
    builder.close()


def test_a_batch_projects_exactly_as_one_event_at_a_time(tmp_path: Path) -> None:
    """The batched writes (index rows, new snapshots, domain assignments deferred to the
    end of a batch or to the next statement that reads their table) leave every table,
    checkpoints included, as applying each event on its own does."""
    from tests.ledger_builder import build_busy_ledger

    builder = build_busy_ledger(tmp_path / "ledger.sqlite", operations=120, seed=11)
    last = builder.app.max_position()
    dumps = []
    try:
        for step in (1, 7, last):
            view = TreeView(builder.app, checkpoint_every=5)
            view.rebuild(until=0)
            for until in range(step, last + step, step):
                view.catch_up(until=min(until, last))
            assert view.position() == last
            dumps.append(view.dump())
            view.close()
    finally:
        builder.close()
    assert dumps[0]["view_snapshots"] and dumps[0]["view_checkpoints"]
    assert dumps[0] == dumps[1] == dumps[2]
