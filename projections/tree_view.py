"""The snapshot-tree read model: SQLite tables beside the event log, with tracking.

Rows and the tracking position are written in one transaction (``BEGIN IMMEDIATE``),
so each event is applied exactly once even when several processes catch up at once.
The view is derived: ``rebuild`` drops it and replays the whole log.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from ledger.app import LedgerApp
from projections.projector import apply_event

SCHEMA = """
CREATE TABLE IF NOT EXISTS view_tracking (
    application TEXT PRIMARY KEY, position INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS view_domains (
    domain_id TEXT PRIMARY KEY, name TEXT NOT NULL, uuid TEXT NOT NULL,
    current TEXT, in_flight TEXT);
CREATE INDEX IF NOT EXISTS view_domains_name ON view_domains(name);
CREATE TABLE IF NOT EXISTS view_snapshots (
    domain_id TEXT NOT NULL, name TEXT NOT NULL, parent TEXT,
    created_at REAL NOT NULL, position INTEGER NOT NULL, kind TEXT NOT NULL,
    state TEXT NOT NULL, disk_only INTEGER NOT NULL, complete INTEGER NOT NULL,
    record TEXT NOT NULL, PRIMARY KEY (domain_id, name));
CREATE INDEX IF NOT EXISTS view_snapshots_parent ON view_snapshots(domain_id, parent);
"""
VIEW_TABLES = ("view_tracking", "view_domains", "view_snapshots")
BATCH = 2000


def with_parent(row: sqlite3.Row) -> dict[str, Any]:
    """A stored record plus the snapshot's parent, which deletes may have changed."""
    return {**json.loads(row["record"]), "parent": row["parent"]}


class TreeView:
    """Snapshot trees per domain, projected from a ``LedgerApp``'s log."""

    def __init__(self, app: LedgerApp, lock_timeout: float = 30.0) -> None:
        self.app = app
        self.db = sqlite3.connect(app.location, timeout=lock_timeout, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Cursor]:
        cur = self.db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            yield cur
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        cur.execute("COMMIT")

    def position(self) -> int:
        """Position of the last event applied to the view (0 before any)."""
        row = self.db.execute(
            "SELECT position FROM view_tracking WHERE application=?", (self.app.name,)
        ).fetchone()
        return int(row[0]) if row else 0

    def catch_up(self) -> int:
        """Apply every event recorded after the view's position; returns how many."""
        applied = 0
        while True:
            start = self.position() + 1
            batch = list(self.app.iter_log(start, stop=start + BATCH - 1))
            if not batch:
                return applied
            with self._write() as cur:
                row = cur.execute(
                    "SELECT position FROM view_tracking WHERE application=?", (self.app.name,)
                ).fetchone()
                if (int(row[0]) if row else 0) != start - 1:
                    continue  # another process applied these meanwhile
                self._apply(cur, batch)
            applied += len(batch)

    def _apply(self, cur: sqlite3.Cursor, batch: Iterable[tuple[int, Any]]) -> None:
        last = 0
        for position, event in batch:
            apply_event(cur, position, event)
            last = position
        cur.execute(
            "INSERT INTO view_tracking(application, position) VALUES (?, ?) "
            "ON CONFLICT(application) DO UPDATE SET position=excluded.position",
            (self.app.name, last),
        )

    def rebuild(self) -> int:
        """Drop the view and project the whole log again; returns the event count."""
        with self._write() as cur:
            for table in VIEW_TABLES:
                cur.execute(f"DELETE FROM {table}")
        return self.catch_up()

    # ---- queries -------------------------------------------------------------

    def domain(self, domain_id: str) -> sqlite3.Row | None:
        """The row of one domain: name, uuid, current snapshot, operation in flight."""
        return self.db.execute(
            "SELECT * FROM view_domains WHERE domain_id=?", (domain_id,)
        ).fetchone()

    def domains(self) -> list[sqlite3.Row]:
        return self.db.execute("SELECT * FROM view_domains ORDER BY name").fetchall()

    def snapshot_rows(self, domain_id: str, with_record: bool = False) -> list[sqlite3.Row]:
        """Snapshots of one domain in creation order."""
        columns = "*" if with_record else (
            "name, parent, created_at, position, kind, state, disk_only, complete")
        return self.db.execute(
            f"SELECT {columns} FROM view_snapshots WHERE domain_id=? ORDER BY position",
            (domain_id,),
        ).fetchall()

    def record(self, domain_id: str, name: str) -> dict[str, Any] | None:
        """The full libxl-json record of one snapshot with its current parent, or ``None``."""
        row = self.db.execute(
            "SELECT record, parent FROM view_snapshots WHERE domain_id=? AND name=?",
            (domain_id, name),
        ).fetchone()
        return with_parent(row) if row else None

    def records(self, domain_id: str) -> list[dict[str, Any]]:
        """Every snapshot's record with its current parent, in creation order."""
        return [with_parent(r) for r in self.snapshot_rows(domain_id, with_record=True)]

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of the view's tables (without tracking), for comparisons."""
        return {
            t: [tuple(r) for r in self.db.execute(f"SELECT * FROM {t} ORDER BY 1, 2")]
            for t in VIEW_TABLES[1:]
        }
