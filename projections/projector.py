"""How each ledger event changes the snapshot-tree tables and the time index."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from projections.domain_writes import add_snapshot, set_domain
from projections.timeline_writer import TimelineWriter

Handler = Callable[[Any, int, Any], None]
_HANDLERS: dict[str, Handler] = {}


def _on(name: str) -> Callable[[Handler], Handler]:
    def register(func: Handler) -> Handler:
        _HANDLERS[f"DomainLedger.{name}"] = func
        return func
    return register


def apply_event(cur: Any, position: int, event: Any, index: TimelineWriter) -> None:
    """Apply one event to the view: the tree tables, and the time index (every event;
    ``index`` writes its rows when the caller flushes it)."""
    apply_to_tree(cur, position, event)
    index.record(position, event)


def apply_to_tree(cur: Any, position: int, event: Any) -> None:
    """Apply one event to the tree tables; events that do not touch the tree are skipped.
    A replay of the past applies this alone: it reads no time index."""
    handler = _HANDLERS.get(type(event).__qualname__)
    if handler is not None:
        handler(cur, position, event)


def _domain_id(event: Any) -> str:
    return str(event.originator_id)


@_on("Registered")
def _registered(cur: Any, position: int, event: Any) -> None:
    cur.execute(
        "INSERT INTO view_domains(domain_id, name, uuid, current, in_flight) "
        "VALUES (?, ?, ?, NULL, NULL) ON CONFLICT(domain_id) DO UPDATE SET "
        "name=excluded.name, uuid=excluded.uuid, current=NULL, in_flight=NULL",
        (_domain_id(event), event.domain_name, event.domain_uuid),
    )


@_on("OperationStarted")
def _started(cur: Any, position: int, event: Any) -> None:
    in_flight = {
        "operation_id": event.operation_id, "kind": event.kind,
        "snapshot_name": event.snapshot_name, "actor": event.actor,
        "started_at": event.timestamp.timestamp(),
        "owner": getattr(event, "owner", None),  # absent from older events
    }
    set_domain(cur, _domain_id(event), "in_flight", json.dumps(in_flight))


@_on("OperationFinished")
def _finished(cur: Any, position: int, event: Any) -> None:
    set_domain(cur, _domain_id(event), "in_flight", None)


@_on("SnapshotTaken")
def _taken(cur: Any, position: int, event: Any) -> None:
    record = event.record
    add_snapshot(cur, (
        _domain_id(event), event.name, event.parent, event.timestamp.timestamp(), position,
        record.get("type", "internal"), record.get("state", "shutoff"),
        int(record.get("memory", "no") == "no"), 1, json.dumps(record)))
    _set_current(cur, event, event.name)


@_on("RevertedToSnapshot")
def _reverted(cur: Any, position: int, event: Any) -> None:
    _set_current(cur, event, event.name)


@_on("SnapshotDeleted")
def _deleted(cur: Any, position: int, event: Any) -> None:
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
def _edited(cur: Any, position: int, event: Any) -> None:
    domain_id, old, new = _domain_id(event), event.name, event.new_name
    holds = _holds(cur, domain_id, old)
    record = dict(event.record)
    if holds:
        record["holds"] = holds
    cur.execute("UPDATE view_snapshots SET name=?, record=? WHERE domain_id=? AND name=?",
                (new, json.dumps(record), domain_id, old))
    cur.execute("UPDATE view_snapshots SET parent=? WHERE domain_id=? AND parent=?",
                (new, domain_id, old))
    cur.execute("UPDATE view_domains SET current=? WHERE domain_id=? AND current=?",
                (new, domain_id, old))


@_on("CurrentMarked")
def _current_marked(cur: Any, position: int, event: Any) -> None:
    _set_current(cur, event, event.name)


@_on("HoldPlaced")
def _hold_placed(cur: Any, position: int, event: Any) -> None:
    _set_holds(cur, _domain_id(event), event.name, lambda holds: [*holds, event.tag])


@_on("HoldReleased")
def _hold_released(cur: Any, position: int, event: Any) -> None:
    _set_holds(cur, _domain_id(event), event.name,
               lambda holds: [t for t in holds if t != event.tag])


@_on("SnapshotDisksRemoved")
def _disks_removed(cur: Any, position: int, event: Any) -> None:
    cur.execute("UPDATE view_snapshots SET complete=0 WHERE domain_id=? AND name=?",
                (_domain_id(event), event.name))


def _holds(cur: Any, domain_id: str, name: str) -> list[Any] | None:
    """The holds kept in a snapshot's record (``None``: no such snapshot or none kept)."""
    row = cur.execute("SELECT record FROM view_snapshots WHERE domain_id=? AND name=?",
                      (domain_id, name)).fetchone()
    return json.loads(row[0]).get("holds") if row else None


def _set_holds(cur: Any, domain_id: str, name: str,
               change: Callable[[list[Any]], list[Any]]) -> None:
    """Rewrite a snapshot's holds in its record (no row: nothing to do)."""
    row = cur.execute("SELECT record FROM view_snapshots WHERE domain_id=? AND name=?",
                      (domain_id, name)).fetchone()
    if row is None:
        return
    record = json.loads(row[0])
    record["holds"] = change(list(record.get("holds") or []))
    cur.execute("UPDATE view_snapshots SET record=? WHERE domain_id=? AND name=?",
                (json.dumps(record), domain_id, name))


def _set_current(cur: Any, event: Any, name: str | None) -> None:
    set_domain(cur, _domain_id(event), "current", name)
