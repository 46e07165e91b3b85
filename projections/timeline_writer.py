"""Writing the time index (``projections.timeline``) for a batch of events at once."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ledger.storage.port import db_of

#: Keys per ``IN (...)`` lookup.
_CHUNK = 500
_NEW_TABLES = {"domain": ("view_timeline_domains", ("id", "domain_id")),
               "operation": ("view_operations", ("id", "operation_id", "kind")),
               "actor": ("view_actors", ("id", "user", "sudo_user", "uid", "host"))}
_TIMELINE_COLUMNS = ("position", "high_water", "domain", "operation", "actor")
ActorKey = tuple[str | None, str | None, int | None, str | None]


class TimelineWriter:
    """The index rows of one transaction; ``flush`` writes them.

    The high-water mark and the domain, operation and actor ids are worked out in memory
    (the next after the table's largest, as SQLite's rowids and a rebuild give), and the
    rows go in with one ``executemany`` per table instead of five round trips per event
    (which made a PostgreSQL catch-up ten times slower than SQLite's).
    """

    def __init__(self, cur: Any, events: Iterable[Any]) -> None:
        self.cur = cur
        events = list(events)
        row = cur.execute("SELECT high_water FROM view_timeline ORDER BY position DESC "
                          "LIMIT 1").fetchone()
        self.high_water: float | None = float(row[0]) if row else None
        self.domains = _known(cur, "view_timeline_domains", "domain_id",
                              {str(e.originator_id) for e in events})
        self.operations = _known(cur, "view_operations", "operation_id",
                                 {o for e in events
                                  if isinstance(o := vars(e).get("operation_id"), str)})
        self.actors: dict[ActorKey, int] = {
            (r[1], r[2], r[3], r[4]): int(r[0]) for r in cur.execute(
                "SELECT id, \"user\", sudo_user, uid, host FROM view_actors")}
        top = cur.execute("SELECT (SELECT MAX(id) FROM view_timeline_domains), "
                          "(SELECT MAX(id) FROM view_operations), "
                          "(SELECT MAX(id) FROM view_actors)").fetchone()
        self.next = {"domain": int(top[0] or 0), "operation": int(top[1] or 0),
                     "actor": int(top[2] or 0)}
        self.new: dict[str, list[tuple[Any, ...]]] = {"domain": [], "operation": [],
                                                       "actor": []}
        #: Operations already stored whose kind is set (``OperationStarted``) -> kind.
        self.kinds: dict[int, str] = {}
        #: Operation id -> index of its row in ``new["operation"]``.
        self.new_operations: dict[int, int] = {}
        self.rows: list[tuple[int, float, int, int | None, int | None]] = []
        self.backfills: list[tuple[int, int, int]] = []

    def record(self, position: int, event: Any) -> None:
        """Index one event (in log order)."""
        stamp = event.timestamp.timestamp()
        self.high_water = stamp if self.high_water is None else max(stamp, self.high_water)
        operation_id, kind, actor = _fields(event)
        domain = self._id("domain", self.domains, str(event.originator_id))
        operation = None
        if operation_id is not None:
            operation = self._id("operation", self.operations, operation_id, kind)
            if kind is not None:
                self._set_kind(operation, kind)
        actor_id = None
        if actor is not None:
            actor_id = self._id("actor", self.actors, actor)
        self.rows.append((position, self.high_water, domain, operation, actor_id))
        if operation is not None and event.originator_version == 2:
            # The domain's Registered event has no operation id; it was saved with this one.
            self.backfills.append((operation, domain, position))

    def _id(self, table: str, known: dict[Any, int], key: Any, *extra: Any) -> int:
        found = known.get(key)
        if found is None:
            self.next[table] += 1
            found = known[key] = self.next[table]
            values = key if isinstance(key, tuple) else (key,)
            if table == "operation":
                self.new_operations[found] = len(self.new[table])
            self.new[table].append((found, *values, *extra))
        return found

    def _set_kind(self, operation: int, kind: str) -> None:
        """An operation's kind: in its pending row if it is new, else updated at flush."""
        at = self.new_operations.get(operation)
        if at is None:
            self.kinds[operation] = kind
        else:
            self.new["operation"][at] = (operation, self.new["operation"][at][1], kind)

    def flush(self) -> None:
        """Write what ``record`` gathered (in the caller's transaction; on PostgreSQL
        outside a pipeline: the rows go in by ``COPY``)."""
        db, cur = db_of(self.cur), self.cur
        for table, (name, columns) in _NEW_TABLES.items():
            if self.new[table]:
                db.insert_rows(name, columns, self.new[table])
        if self.kinds:
            cur.executemany("UPDATE view_operations SET kind=? WHERE id=?",
                            [(kind, op) for op, kind in self.kinds.items()])
        if self.rows:
            db.insert_rows("view_timeline", _TIMELINE_COLUMNS, self.rows)
        if self.backfills:
            cur.executemany("UPDATE view_timeline SET operation=? WHERE domain=? AND "
                            "operation IS NULL AND position < ?", self.backfills)
        for pending in (*self.new.values(), self.kinds, self.new_operations, self.rows,
                        self.backfills):
            pending.clear()


def _fields(event: Any) -> tuple[str | None, str | None, ActorKey | None]:
    """An event's operation id, its kind (on ``OperationStarted``) and its actor key."""
    fields = vars(event)
    operation_id = fields.get("operation_id")
    if not isinstance(operation_id, str):
        return None, None, _actor_key(fields.get("actor"))
    kind = fields.get("kind") if type(event).__qualname__.endswith(".OperationStarted") \
        else None
    return operation_id, None if kind is None else str(kind), _actor_key(fields.get("actor"))


def _actor_key(actor: Any) -> ActorKey | None:
    if not isinstance(actor, dict):
        return None
    return (_text(actor.get("user")), _text(actor.get("sudo_user")),
            actor.get("uid") if isinstance(actor.get("uid"), int) else None,
            _text(actor.get("host")))


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _known(cur: Any, table: str, column: str, keys: set[Any]) -> dict[Any, int]:
    """``key -> id`` of the ``keys`` already in ``table``."""
    found: dict[Any, int] = {}
    ordered = sorted(keys)
    for at in range(0, len(ordered), _CHUNK):
        part = ordered[at:at + _CHUNK]
        marks = ",".join("?" * len(part))
        for row in cur.execute(f"SELECT id, {column} FROM {table} WHERE {column} IN ({marks})",
                               part):
            found[row[1]] = int(row[0])
    return found
