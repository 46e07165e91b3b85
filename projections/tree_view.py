"""The snapshot-tree read model: tables beside the event log (SQLite or PostgreSQL,
through ``ledger.storage``), with tracking."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ledger.app import LazyApp, LedgerApp
from ledger.entries import log_size
from ledger.storage.port import db_of, open_db
from projections import checkpoints, timeline
from projections.domain_writes import DomainWrites
from projections.projector import apply_event
from projections.timeline_writer import TimelineWriter

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
CREATE INDEX IF NOT EXISTS view_snapshots_listing ON view_snapshots(
    domain_id, position, name, parent, created_at, kind, state, disk_only, complete);
""" + timeline.SCHEMA + checkpoints.SCHEMA
VIEW_TABLES = ("view_tracking", "view_domains", "view_snapshots", *timeline.TABLES,
               "view_checkpoints")
BATCH = 2000


def with_parent(row: sqlite3.Row) -> dict[str, Any]:
    """A stored record plus the snapshot's parent, which deletes may have changed."""
    return {**json.loads(row["record"]), "parent": row["parent"]}


class TreeTables:
    """Queries over the tree tables of one SQLite connection (the ledger's, or a replay's)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

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

    def domain_rows(self, domain_id: str) -> tuple[tuple[Any, ...] | None, list[tuple[Any, ...]]]:
        """One domain's rows of the tree tables, for comparisons."""
        domain = self.domain(domain_id)
        return (tuple(domain) if domain else None,
                [tuple(r) for r in self.db.execute(
                    "SELECT * FROM view_snapshots WHERE domain_id=? ORDER BY position, name",
                    (domain_id,))])

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of the view's tables (without tracking), for comparisons."""
        return {
            t: [tuple(r) for r in self.db.execute(f"SELECT * FROM {t} ORDER BY 1, 2")]
            for t in VIEW_TABLES[1:]
        }


def create_schema(db: Any) -> None:
    """The view's tables, unless they exist (PostgreSQL: under the write lock, as two
    processes creating them at once would collide in its catalog)."""
    if getattr(db, "dense", True):
        db.executescript(SCHEMA)
    elif not db.table_exists("view_checkpoints"):
        cur = db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            db.executescript(SCHEMA)
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        cur.execute("COMMIT")


def open_memory_tables() -> TreeTables:
    """Empty tree tables in memory, with the view's schema."""
    db = sqlite3.connect(":memory:", isolation_level=None)
    db.row_factory = sqlite3.Row
    db.executescript(SCHEMA)
    return TreeTables(db)


class TreeView(TreeTables):
    """Snapshot trees per domain, projected from a ``LedgerApp``'s log.

    Rows and the tracking position are written in one transaction (``BEGIN IMMEDIATE``),
    so each event is applied exactly once even when several processes catch up at once.
    The same transaction writes the time index (``projections.timeline``) and, every
    ``checkpoints.EVERY`` events of a domain, a checkpoint of that domain's rows; a batch's
    index rows, new snapshots and domain assignments go in together (``timeline_writer``,
    ``domain_writes``: a few statements per batch, not several per event). The view
    is derived: ``rebuild`` drops it and replays the whole log. ``TreeTables`` holds the
    queries, so a replayed past (``projections.replay``) reads exactly as the present does.
    """

    def __init__(self, app: LedgerApp | LazyApp, lock_timeout: float = 30.0,
                 checkpoint_every: int = checkpoints.EVERY, db: Any = None) -> None:
        """``db``: a connection to ``app``'s database already open (else one is)."""
        db = db if db is not None else open_db(app.location, timeout=lock_timeout)
        db.row_factory = sqlite3.Row
        create_schema(db)
        super().__init__(db)
        self.app = app
        self.checkpoint_every = checkpoint_every
        self._checked_index = False

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

    def catch_up(self, until: int | None = None) -> int:
        """Apply every event recorded after the view's position (up to ``until``);
        returns how many."""
        if not self._checked_index:
            self._checked_index = True
            if self._index_incomplete():
                return self.rebuild(until)
        if self._up_to_date(until):
            return 0
        applied = 0
        while True:
            start = self.position() + 1
            stop = start + BATCH - 1 if until is None else min(start + BATCH - 1, until)
            if stop < start:
                return applied
            batch = list(self.app.iter_log(start, stop=stop))
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

    def _up_to_date(self, until: int | None) -> bool:
        """True when the view holds every event (up to ``until``), found with the view's
        own connection: a read then leaves the library's persistence unopened."""
        try:
            last = log_size(self.db)
        except sqlite3.OperationalError:  # no event table yet (the library makes it)
            return False
        return self.position() >= (last if until is None else min(until, last))

    def _index_incomplete(self) -> bool:
        """A view projected before the time index existed has no timeline rows."""
        position = self.position()
        return position > 0 and timeline.high_water_at(self.db, position) is None

    def _apply(self, cur: sqlite3.Cursor, batch: list[tuple[int, Any]]) -> None:
        last = 0
        index = TimelineWriter(cur, (event for _, event in batch))
        writes = DomainWrites(cur)
        with db_of(self.db).pipeline():
            for position, event in batch:
                apply_event(writes, position, event, index)
                if checkpoints.due(event.originator_version, self.checkpoint_every):
                    checkpoints.take(writes, str(event.originator_id), position,
                                     event.originator_version)
                last = position
        writes.flush(bulk=True)
        index.flush()
        cur.execute(
            "INSERT INTO view_tracking(application, position) VALUES (?, ?) "
            "ON CONFLICT(application) DO UPDATE SET position=excluded.position",
            (self.app.name, last),
        )

    def rebuild(self, until: int | None = None) -> int:
        """Drop the view and project the whole log again; returns the event count."""
        self._checked_index = True
        with self._write() as cur:
            if getattr(self.db, "dense", True):
                for table in VIEW_TABLES:
                    cur.execute(f"DELETE FROM {table}")
            else:  # PostgreSQL: identities start again from 1, as SQLite's rowids do
                cur.execute(f"TRUNCATE {', '.join(VIEW_TABLES)} RESTART IDENTITY")
        return self.catch_up(until)
