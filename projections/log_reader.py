"""Reading chosen events from the log: by position, or one domain's events up to a position.

Rows are read from the ledger file with plain SQL and decoded by the application's
own mapper, so the events are exactly those the library would give.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from ledger.app import LedgerApp
from ledger.storage.port import db_of, event_columns

def decode(app: LedgerApp, row: tuple[Any, ...]) -> tuple[int, Any]:
    """``(position, event)`` from a raw ``(position, id, version, topic, state)`` row."""
    position, originator_id, version, topic, state = row
    stored = StoredEvent(originator_id=UUID(originator_id), originator_version=version,
                         topic=topic, state=state)
    return position, app.mapper.to_domain_event(stored)


def events_at(app: LedgerApp, db: Any, positions: Iterable[int]
              ) -> Iterator[tuple[int, Any]]:
    """The events at ``positions`` (ascending), decoded."""
    positions = list(positions)
    for chunk in range(0, len(positions), 500):
        part = positions[chunk:chunk + 500]
        marks = ",".join("?" * len(part))
        d = db_of(db)
        rows = db.execute(f"SELECT {event_columns(d)} FROM {d.events} WHERE {d.pos} IN "
                          f"({marks}) ORDER BY {d.pos}", part).fetchall()
        for row in rows:
            yield decode(app, row)


def domain_rows(db: Any, domain_id: str, after_version: int = 0,
                until: int | None = None) -> Iterator[tuple[Any, ...]]:
    """One domain's raw rows after ``after_version``, up to log position ``until``.

    A domain's versions are committed in order (optimistic concurrency refuses a
    version whose predecessor is not stored), so its rows by version are also in
    position order, and the scan stops at the first row past ``until``.
    """
    d = db_of(db)
    for row in d.stream(f"SELECT {event_columns(d)} FROM {d.events} WHERE originator_id=? "
                        "AND originator_version>? ORDER BY originator_version",
                        (d.oid_param(domain_id), after_version)):
        if until is not None and row[0] > until:
            return
        yield row
