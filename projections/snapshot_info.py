"""One snapshot on one screen, and every domain at a glance: read from the tree tables."""

from __future__ import annotations

import json
from typing import Any

from projections.snapshot_filters import kind_of_state
from projections.trees import child_names, descendants


def _actor_at(db: Any, position: int) -> dict[str, Any] | None:
    """Who wrote the event at ``position`` (the time index keeps each event's actor)."""
    row = db.execute(
        "SELECT a.\"user\", a.sudo_user, a.uid, a.host, t.high_water FROM view_timeline t "
        "JOIN view_actors a ON a.id = t.actor WHERE t.position=?", (position,)).fetchone()
    if row is None:
        return None
    return {"user": row[0], "sudo_user": row[1], "uid": row[2], "host": row[3]}


def snapshot_info(db: Any, domain_id: str, name: str) -> dict[str, Any] | None:
    """Name, parent, children, descendants, type, state, disks, memory, who and when."""
    row = db.execute("SELECT * FROM view_snapshots WHERE domain_id=? AND name=?",
                     (domain_id, name)).fetchone()
    if row is None:
        return None
    parents = dict(db.execute("SELECT name, parent FROM view_snapshots WHERE domain_id=?",
                              (domain_id,)).fetchall())
    below = child_names([{"name": n, "parent": p} for n, p in parents.items()])
    children = sorted(below.get(name, []))
    current = db.execute("SELECT current FROM view_domains WHERE domain_id=?",
                         (domain_id,)).fetchone()
    record = json.loads(row["record"])
    return {
        "name": name, "parent": row["parent"], "children": children,
        "descendants": len(descendants(below, name)),
        "current": bool(current and current[0] == name),
        "type": row["kind"], "state": row["state"], "taken": kind_of_state(row),
        "complete": bool(row["complete"]), "description": record.get("description", ""),
        "disks": [{"device": d.get("device"), "type": d.get("type"), "file": d.get("file"),
                   "path": d.get("path")} for d in record.get("disks", [])],
        "memory_file": record.get("memory_file") or None,
        "memory_size": record.get("memory_size"),
        "toolstack": record.get("toolstack"),
        "created_at": row["created_at"], "created_by": _actor_at(db, row["position"]),
        "adopted": bool(record.get("adopted")),
        "holds": list(record.get("holds", [])),
        "wrap": record.get("wrap"),
    }


def _number(value: Any) -> int | float:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def domains_overview(db: Any) -> list[dict[str, Any]]:
    """Every domain: snapshots, current, last operation (when, who, host), memory held,
    operation in flight."""
    out = []
    counts = {r[0]: r[1] for r in db.execute(
        "SELECT domain_id, COUNT(*) FROM view_snapshots GROUP BY domain_id")}
    memory_of: dict[str, int | float] = {}
    for r in db.execute("SELECT domain_id, record FROM view_snapshots WHERE disk_only = 0"):
        # only the records of snapshots with memory are parsed
        memory_of[r[0]] = memory_of.get(r[0], 0) + _number(json.loads(r[1]).get("memory_size"))
    for d in db.execute("SELECT * FROM view_domains ORDER BY name").fetchall():
        domain_id = d["domain_id"]
        count = counts.get(domain_id, 0)
        memory = memory_of.get(domain_id, 0)
        last = db.execute(
            "SELECT t.position, t.high_water FROM view_timeline t JOIN view_timeline_domains "
            "td ON td.id = t.domain WHERE td.domain_id=? ORDER BY t.position DESC LIMIT 1",
            (domain_id,)).fetchone()
        in_flight = json.loads(d["in_flight"]) if d["in_flight"] else None
        out.append({
            "name": d["name"], "uuid": d["uuid"], "snapshots": count, "current": d["current"],
            "last_event_at": last[1] if last else None,
            "last_actor": _actor_at(db, last[0]) if last else None,
            "memory_bytes": memory,
            "in_flight": None if in_flight is None else {
                k: in_flight.get(k) for k in ("operation_id", "kind", "snapshot_name",
                                              "started_at")},
        })
    return out
