"""The time index: for every event, the log's "high-water" time, its domain, operation
and actor, so history filters and "as of" answers never scan the log."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS view_timeline (
    position INTEGER PRIMARY KEY, high_water REAL NOT NULL, domain INTEGER NOT NULL,
    operation INTEGER, actor INTEGER);
CREATE INDEX IF NOT EXISTS view_timeline_high_water ON view_timeline(high_water);
CREATE INDEX IF NOT EXISTS view_timeline_domain ON view_timeline(domain, position);
CREATE TABLE IF NOT EXISTS view_timeline_domains (
    id INTEGER PRIMARY KEY, domain_id TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS view_operations (
    id INTEGER PRIMARY KEY, operation_id TEXT NOT NULL UNIQUE, kind TEXT);
CREATE TABLE IF NOT EXISTS view_actors (
    id INTEGER PRIMARY KEY, "user" TEXT, sudo_user TEXT, uid INTEGER, host TEXT);
CREATE INDEX IF NOT EXISTS view_actors_who ON view_actors("user", sudo_user, uid, host);
"""
TABLES = ("view_timeline", "view_timeline_domains", "view_operations", "view_actors")


# ---- queries -----------------------------------------------------------------------


def position_as_of(db: Any, when: float) -> int:
    """The last position of the longest log prefix whose high-water time is <= ``when``.

    What "as of T" means. Event timestamps are taken by each writer before it commits,
    so with concurrent writers (or a host whose clock stepped back) they are not in
    commit order: event 11 may carry an earlier time than event 10. A state "as of T"
    built from "every event stamped <= T" could then include 11 without 10, a state the
    ledger never was in. Instead the index keeps, per position, the running maximum of
    the timestamps up to it (the high-water mark, monotonic by construction), and
    "as of T" is the longest prefix of the log whose high-water mark is <= T: a state
    that really existed, in commit order. An event committed after one stamped later
    than T is left out even if its own stamp is earlier: it cannot have been committed
    before that later stamp was taken, which is after T. Every time filter (history
    ``--since/--until``, ``diff``, ``export --since``) selects positions the same way, so
    ``history --since T1 --until T2`` lists exactly the events ``diff`` compares.
    """
    row = db.execute("SELECT position FROM view_timeline WHERE high_water <= ? "
                     "ORDER BY high_water DESC, position DESC LIMIT 1", (when,)).fetchone()
    return int(row[0]) if row else 0


def first_position_since(db: Any, when: float) -> int | None:
    """The first position whose high-water time is >= ``when`` (None: nothing since)."""
    row = db.execute("SELECT position FROM view_timeline WHERE high_water >= ? "
                     "ORDER BY high_water, position LIMIT 1", (when,)).fetchone()
    return int(row[0]) if row else None


def high_water_at(db: Any, position: int) -> float | None:
    row = db.execute("SELECT high_water FROM view_timeline WHERE position=?",
                     (position,)).fetchone()
    return float(row[0]) if row else None


def last_position(db: Any) -> int:
    row = db.execute("SELECT MAX(position) FROM view_timeline").fetchone()
    return int(row[0] or 0)


def position_range(db: Any, since: float | None, until: float | None
                   ) -> tuple[int, int]:
    """``(first, last)`` positions selected by a time range (first > last: none)."""
    last = last_position(db) if until is None else position_as_of(db, until)
    if since is None:
        return 1, last
    first = first_position_since(db, since)
    return (last + 1, last) if first is None else (first, last)


def select_positions(
    db: Any, since: float | None = None, until: float | None = None,
    domain_id: str | None = None, actor: str | None = None, kind: str | None = None,
) -> list[int]:
    """Positions of the events matching every filter given, in commit order.

    ``actor`` matches the user name, the ``SUDO_USER`` who ran sudo, or a numeric uid;
    ``kind`` is the operation kind (create, revert, delete, ...).
    """
    first, last = position_range(db, since, until)
    if first > last:
        return []
    sql = ["SELECT t.position FROM view_timeline t"]
    where = ["t.position BETWEEN ? AND ?"]
    params: list[Any] = [first, last]
    if domain_id is not None:
        where.append("t.domain = (SELECT id FROM view_timeline_domains WHERE domain_id=?)")
        params.append(domain_id)
    if kind is not None:
        where.append("t.operation IN (SELECT id FROM view_operations WHERE kind=?)")
        params.append(kind)
    if actor is not None:
        where.append("t.actor IN (SELECT id FROM view_actors WHERE \"user\"=? OR sudo_user=?"
                     + (" OR uid=?" if actor.isdigit() else "") + ")")
        params += [actor, actor] + ([int(actor)] if actor.isdigit() else [])
    sql.append("WHERE " + " AND ".join(where) + " ORDER BY t.position")
    return [int(r[0]) for r in db.execute(" ".join(sql), params)]


def operations_at(db: Any, positions: list[int]
                  ) -> dict[int, tuple[str | None, str | None]]:
    """``position -> (operation id, operation kind)`` of the events at ``positions``
    (a domain's Registered event belongs to the operation saved with it)."""
    out: dict[int, tuple[str | None, str | None]] = {}
    for chunk in range(0, len(positions), 500):
        part = positions[chunk:chunk + 500]
        marks = ",".join("?" * len(part))
        for position, operation_id, kind in db.execute(
                "SELECT t.position, o.operation_id, o.kind FROM view_timeline t LEFT JOIN "
                f"view_operations o ON o.id = t.operation WHERE t.position IN ({marks})", part):
            out[int(position)] = (operation_id, kind)
    return out


def iter_operations(db: Any, first: int, last: int
                    ) -> Iterator[tuple[int, str | None, str | None]]:
    """``(position, operation id, operation kind)`` for positions ``first..last``, in order."""
    yield from db.execute(
        "SELECT t.position, o.operation_id, o.kind FROM view_timeline t LEFT JOIN "
        "view_operations o ON o.id = t.operation WHERE t.position BETWEEN ? AND ? "
        "ORDER BY t.position", (first, last))
