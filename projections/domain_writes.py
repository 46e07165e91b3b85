"""A projection batch's new snapshot rows and its changes to ``view_domains.current``
and ``in_flight``, written together."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ledger.storage.port import db_of

COLUMNS = ("current", "in_flight")
SNAPSHOT_COLUMNS = ("domain_id", "name", "parent", "created_at", "position", "kind", "state",
                    "disk_only", "complete", "record")


class DomainWrites:
    """A cursor that defers ``set_domain`` assignments and new snapshot rows.

    Nearly every event sets a domain's operation in flight, clears it, moves its current
    snapshot or adds a snapshot: one statement each, a round trip each on PostgreSQL.
    This keeps each domain's last values and the new rows, and writes them before any
    statement that names their table (so every read and conditional update sees them)
    and at the end of the batch (new rows by ``insert_rows``: ``COPY`` on PostgreSQL).
    """

    def __init__(self, cur: Any) -> None:
        self.cur = cur
        self.connection = getattr(cur, "connection", None)
        self.pending: dict[str, dict[str, Any]] = {}
        self.snapshots: list[tuple[Any, ...]] = []

    def set_domain(self, domain_id: str, column: str, value: Any) -> None:
        assert column in COLUMNS
        self.pending.setdefault(domain_id, {})[column] = value

    def add_snapshot(self, row: tuple[Any, ...]) -> None:
        """A new ``view_snapshots`` row (values in ``SNAPSHOT_COLUMNS`` order)."""
        self.snapshots.append(row)

    def execute(self, sql: str, params: Iterable[Any] = ()) -> Any:
        self._before(sql)
        return self.cur.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Iterable[Any]]) -> Any:
        self._before(sql)
        return self.cur.executemany(sql, rows)

    def _before(self, sql: str) -> None:
        if self.snapshots and "view_snapshots" in sql:
            self._flush_snapshots(bulk=False)
        if self.pending and "view_domains" in sql:
            self._flush_domains()

    def flush(self, bulk: bool = False) -> None:
        """Write everything pending (``bulk``: new rows by ``insert_rows``, which on
        PostgreSQL must run outside a pipeline)."""
        self._flush_snapshots(bulk)
        self._flush_domains()

    def _flush_snapshots(self, bulk: bool) -> None:
        rows, self.snapshots = self.snapshots, []
        if rows and bulk:
            db_of(self.cur).insert_rows("view_snapshots", SNAPSHOT_COLUMNS, rows)
        elif rows:
            marks = ", ".join("?" * len(SNAPSHOT_COLUMNS))
            self.cur.executemany(f"INSERT INTO view_snapshots({', '.join(SNAPSHOT_COLUMNS)}) "
                                 f"VALUES ({marks})", rows)

    def _flush_domains(self) -> None:
        """The pending assignments, one statement per set of columns."""
        groups: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        for domain_id, values in self.pending.items():
            columns = tuple(c for c in COLUMNS if c in values)
            groups.setdefault(columns, []).append((*(values[c] for c in columns), domain_id))
        self.pending.clear()
        for columns, rows in groups.items():
            assignments = ", ".join(f"{c}=?" for c in columns)
            self.cur.executemany(f"UPDATE view_domains SET {assignments} WHERE domain_id=?",
                                 rows)


def set_domain(cur: Any, domain_id: str, column: str, value: Any) -> None:
    """``view_domains.<column> = value`` for one domain: deferred on a ``DomainWrites``,
    at once on a plain cursor (a replay's)."""
    if isinstance(cur, DomainWrites):
        cur.set_domain(domain_id, column, value)
    else:
        assert column in COLUMNS
        cur.execute(f"UPDATE view_domains SET {column}=? WHERE domain_id=?", (value, domain_id))


def add_snapshot(cur: Any, row: tuple[Any, ...]) -> None:
    """A new ``view_snapshots`` row: deferred on a ``DomainWrites``, at once otherwise."""
    if isinstance(cur, DomainWrites):
        cur.add_snapshot(row)
    else:
        marks = ", ".join("?" * len(SNAPSHOT_COLUMNS))
        cur.execute(f"INSERT INTO view_snapshots({', '.join(SNAPSHOT_COLUMNS)}) "
                    f"VALUES ({marks})", row)
