"""How each ledger event changes the snapshot-tree tables and the time index."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any

from projections import timeline

Handler = Callable[[sqlite3.Cursor, int, Any], None]
_HANDLERS: dict[str, Handler] = {}


def _on(name: str) -> Callable[[Handler], Handler]:
    def register(func: Handler) -> Handler:
        _HANDLERS[f"DomainLedger.{name}"] = func
        return func
    return register


def apply_event(cur: sqlite3.Cursor, position: int, event: Any) -> None:
    """Apply one event to the view: the tree tables, and the time index (every event)."""
    apply_to_tree(cur, position, event)
    timeline.record(cur, position, event)


def apply_to_tree(cur: sqlite3.Cursor, position: int, event: Any) -> None:
    """Apply one event to the tree tables; events that do not touch the tree are skipped.
    A replay of the past applies this alone: it reads no time index."""
    handler = _HANDLERS.get(type(event).__qualname__)
    if handler is not None:
        handler(cur, position, event)


def _domain_id(event: Any) -> str:
    return str(event.originator_id)


@_on("Registered")
def _registered(cur: sqlite3.Cursor, position: int, event: Any) -> None:
    cur.execute(
        "INSERT OR REPLACE INTO view_domains(domain_id, name, uuid, current, in_flight) "
        "VALUES (?, ?, ?, NULL, NULL)",
        (_domain_id(event), event.domain_name, event.domain_uuid),
    )


@_on("OperationStarted")
def _started(cur: sqlite3.Cursor, position: int, event: Any) -> None:
    in_flight = {
        "operation_id": event.operation_id, "kind": event.kind,
        "snapshot_name": event.snapshot_name, "actor": event.actor,
        "started_at": event.timestamp.timestamp(),
        "owner": getattr(event, "owner", None),  # absent from older events
    }
    cur.execute("UPDATE view_domains SET in_flight=? WHERE domain_id=?",
                (json.dumps(in_flight), _domain_id(event)))


@_on("OperationFinished")
def _finished(cur: sqlite3.Cursor, position: int, event: Any) -> None:
    cur.execute("UPDATE view_domains SET in_flight=NULL WHERE domain_id=?", (_domain_id(event),))


@_on("SnapshotTaken")
def _taken(cur: sqlite3.Cursor, position: int, event: Any) -> None:
    record = event.record
    cur.execute(
        "INSERT INTO view_snapshots(domain_id, name, parent, created_at, position, kind, "
        "state, disk_only, complete, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?)",
        (_domain_id(event), event.name, event.parent, event.timestamp.timestamp(), position,
         record.get("type", "internal"), record.get("state", "shutoff"),
         int(record.get("memory", "no") == "no"), json.dumps(record)),
    )
    _set_current(cur, event, event.name)


@_on("RevertedToSnapshot")
def _reverted(cur: sqlite3.Cursor, position: int, event: Any) -> None:
    _set_current(cur, event, event.name)


@_on("SnapshotDeleted")
def _deleted(cur: sqlite3.Cursor, position: int, event: Any) -> None:
    domain_id = _domain_id(event)
    row = cur.execute("SELECT parent FROM view_snapshots WHERE domain_id=? AND name=?",
                      (domain_id, event.name)).fetchone()
    parent = row[0] if row else None
    cur.execute("DELETE FROM view_snapshots WHERE domain_id=? AND name=?", (domain_id, event.name))
    cur.execute("UPDATE view_snapshots SET parent=? WHERE domain_id=? AND parent=?",
                (parent, domain_id, event.name))
    cur.execute("UPDATE view_domains SET current=? WHERE domain_id=? AND current=?",
                (parent, domain_id, event.name))


@_on("SnapshotEdited")
def _edited(cur: sqlite3.Cursor, position: int, event: Any) -> None:
    domain_id, old, new = _domain_id(event), event.name, event.new_name
    row = cur.execute("SELECT json_extract(record, '$.holds') FROM view_snapshots "
                      "WHERE domain_id=? AND name=?", (domain_id, old)).fetchone()
    record = dict(event.record)
    if row and row[0]:
        record["holds"] = json.loads(row[0])
    cur.execute("UPDATE view_snapshots SET name=?, record=? WHERE domain_id=? AND name=?",
                (new, json.dumps(record), domain_id, old))
    cur.execute("UPDATE view_snapshots SET parent=? WHERE domain_id=? AND parent=?",
                (new, domain_id, old))
    cur.execute("UPDATE view_domains SET current=? WHERE domain_id=? AND current=?",
                (new, domain_id, old))


@_on("CurrentMarked")
def _current_marked(cur: sqlite3.Cursor, position: int, event: Any) -> None:
    _set_current(cur, event, event.name)


@_on("HoldPlaced")
def _hold_placed(cur: sqlite3.Cursor, position: int, event: Any) -> None:
    cur.execute("UPDATE view_snapshots SET record=json_set(record, '$.holds', json_insert("
                "COALESCE(json_extract(record, '$.holds'), json('[]')), '$[#]', ?)) "
                "WHERE domain_id=? AND name=?", (event.tag, _domain_id(event), event.name))


@_on("HoldReleased")
def _hold_released(cur: sqlite3.Cursor, position: int, event: Any) -> None:
    row = cur.execute("SELECT json_extract(record, '$.holds') FROM view_snapshots "
                      "WHERE domain_id=? AND name=?", (_domain_id(event), event.name)).fetchone()
    holds = [t for t in json.loads(row[0] or "[]") if t != event.tag] if row else []
    cur.execute("UPDATE view_snapshots SET record=json_set(record, '$.holds', json(?)) "
                "WHERE domain_id=? AND name=?", (json.dumps(holds), _domain_id(event), event.name))


@_on("SnapshotDisksRemoved")
def _disks_removed(cur: sqlite3.Cursor, position: int, event: Any) -> None:
    cur.execute("UPDATE view_snapshots SET complete=0 WHERE domain_id=? AND name=?",
                (_domain_id(event), event.name))


def _set_current(cur: sqlite3.Cursor, event: Any, name: str | None) -> None:
    cur.execute("UPDATE view_domains SET current=? WHERE domain_id=?", (name, _domain_id(event)))
