"""``xlsnap ledger info``: which backend, where, how much, which schema, the last seal."""

from __future__ import annotations

from typing import Any

from ledger.entries import event_count
from ledger.storage.location import is_postgres, shown
from ledger.storage.port import open_db
from ledger.tree_heads import recorded_heads


def ledger_info(location: str) -> dict[str, Any]:
    """What ``ledger info`` shows, read in one snapshot of the database."""
    db = open_db(location, read_only=True)
    try:
        db.execute("BEGIN")
        events = event_count(db) if db.table_exists(db.events) else 0
        domains = int(db.execute(f"SELECT COUNT(DISTINCT originator_id) FROM {db.events}"
                                 ).fetchone()[0]) if events else 0
        heads = recorded_heads(db)
        schema = _schema_version(db)
        db.execute("COMMIT")
    finally:
        db.close()
    last = heads[-1] if heads else None
    return {
        "backend": "postgresql" if is_postgres(location) else "sqlite",
        "location": shown(location), "events": events, "domains": domains,
        "schema_version": schema,
        "last_sealed_head": None if last is None else {
            "seq": last.seq, "tree_size": last.tree_size, "root_hash": last.root_hash.hex(),
            "sealed_at": last.sealed_at, "key_id": last.key_id},
    }


def _schema_version(db: Any) -> int:
    from ledger.storage.schema import SCHEMA_VERSION, TABLE

    if db.table_exists(TABLE):
        row = db.execute(f"SELECT MAX(version) FROM {TABLE}").fetchone()
        if row and row[0] is not None:
            return int(row[0])
    return SCHEMA_VERSION


def info_lines(info: dict[str, Any]) -> list[str]:
    head = info["last_sealed_head"]
    sealed = "never sealed" if head is None else (
        f"#{head['seq']} over {head['tree_size']} events, sealed {head['sealed_at']}, "
        f"key {head['key_id'][:16]}, root {head['root_hash'][:16]}…")
    return [f"backend:        {info['backend']}", f"location:       {info['location']}",
            f"events:         {info['events']}", f"domains:        {info['domains']}",
            f"schema version: {info['schema_version']}", f"last seal:      {sealed}"]
