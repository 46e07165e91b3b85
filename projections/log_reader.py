"""Reading chosen events from the log: by position, or one domain's events up to a position.

Rows are read from the ledger file with plain SQL and decoded by the application's
own mapper, so the events are exactly those the library would give.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from ledger.app import LedgerApp
from ledger.entries import EVENTS_TABLE

_COLUMNS = "rowid, originator_id, originator_version, topic, state"


def decode(app: LedgerApp, row: tuple[Any, ...]) -> tuple[int, Any]:
    """``(position, event)`` from a raw ``(position, id, version, topic, state)`` row."""
    position, originator_id, version, topic, state = row
    stored = StoredEvent(originator_id=UUID(originator_id), originator_version=version,
                         topic=topic, state=state)
    return position, app.mapper.to_domain_event(stored)


def events_at(app: LedgerApp, db: sqlite3.Connection, positions: Iterable[int]
              ) -> Iterator[tuple[int, Any]]:
    """The events at ``positions`` (ascending), decoded."""
    positions = list(positions)
    for chunk in range(0, len(positions), 500):
        part = positions[chunk:chunk + 500]
        marks = ",".join("?" * len(part))
        rows = db.execute(f"SELECT {_COLUMNS} FROM {EVENTS_TABLE} WHERE rowid IN ({marks}) "
                          "ORDER BY rowid", part).fetchall()
        for row in rows:
            yield decode(app, row)


def domain_rows(db: sqlite3.Connection, domain_id: str, after_version: int = 0,
                until: int | None = None) -> Iterator[tuple[Any, ...]]:
    """One domain's raw rows after ``after_version``, up to log position ``until``.

    A domain's versions are committed in order (optimistic concurrency refuses a
    version whose predecessor is not stored), so its rows by version are also in
    position order, and the scan stops at the first row past ``until``.
    """
    oid = UUID(domain_id).hex
    for row in db.execute(f"SELECT {_COLUMNS} FROM {EVENTS_TABLE} WHERE originator_id=? "
                          "AND originator_version>? ORDER BY originator_version",
                          (oid, after_version)):
        if until is not None and row[0] > until:
            return
        yield row
