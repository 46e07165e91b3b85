"""The library's aggregate snapshots: a domain loads from its newest one, and the state it
loads is the state a replay of every event gives."""

from __future__ import annotations

from pathlib import Path

from ledger.app import LedgerApp, project_events
from tests.ledger_builder import build_busy_ledger


def test_a_domain_loads_from_a_recent_snapshot_to_the_same_state(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    builder = build_busy_ledger(path, operations=150)
    builder.close()
    app = LedgerApp(str(path))
    try:
        for name, built in builder.ledgers.items():
            events = list(app.events.get(built.id))
            assert len(events) > 200, name
            snapshots = list(app.snapshots.get(built.id, desc=True, limit=1))
            assert snapshots, f"{name}: no aggregate snapshot after {len(events)} events"
            # a load replays fewer than 100 events on top of the snapshot
            assert built.version - snapshots[0].originator_version < 100
            loaded = app.load(built.id)
            replayed = project_events(None, events)
            assert loaded.version == replayed.version == built.version
            assert vars(loaded) == vars(replayed), name
            assert loaded.entries == built.entries
    finally:
        app.close()
