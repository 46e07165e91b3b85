"""The SQLite adapter of the storage port: a ledger file, the library's ``stored_events``."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any


class SqliteDb(sqlite3.Connection):
    """A ``sqlite3`` connection that also says how the event table is read."""

    backend = "sqlite"
    events = "stored_events"
    pos = "rowid"
    oid_col = "{a}originator_id"
    dense = True

    def oid_param(self, domain_id: str) -> Any:
        from uuid import UUID

        return UUID(domain_id).hex

    def table_exists(self, name: str) -> bool:
        return self.execute("SELECT COUNT(*) FROM sqlite_master WHERE type='table' AND name=?",
                            (name,)).fetchone()[0] > 0

    def stream(self, sql: str, params: Iterable[Any] = ()) -> Iterator[Any]:
        return self.execute(sql, tuple(params))

    scan = stream

    def pipeline(self) -> AbstractContextManager[None]:
        return nullcontext()

    def insert_rows(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
                    ) -> None:
        insert_rows(self, table, columns, rows)


def connect_sqlite(location: str, read_only: bool = False, timeout: float = 30.0) -> SqliteDb:
    """A connection in autocommit mode (transactions are explicit ``BEGIN``s)."""
    if read_only:
        return sqlite3.connect(f"file:{location}?mode=ro", uri=True, timeout=timeout,
                               isolation_level=None, factory=SqliteDb)
    return sqlite3.connect(location, timeout=timeout, isolation_level=None, factory=SqliteDb)


class PlainSqlite:
    """The port's view of a plain ``sqlite3`` connection (one a caller opened itself)."""

    backend, events, pos, oid_col, dense = (SqliteDb.backend, SqliteDb.events, SqliteDb.pos,
                                            SqliteDb.oid_col, SqliteDb.dense)

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)

    def oid_param(self, domain_id: str) -> Any:
        return SqliteDb.oid_param(self, domain_id)  # type: ignore[arg-type]

    def table_exists(self, name: str) -> bool:
        return SqliteDb.table_exists(self, name)  # type: ignore[arg-type]

    def stream(self, sql: str, params: Iterable[Any] = ()) -> Iterator[Any]:
        return self.db.execute(sql, tuple(params))

    scan = stream

    def pipeline(self) -> AbstractContextManager[None]:
        return nullcontext()

    def insert_rows(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
                    ) -> None:
        insert_rows(self.db, table, columns, rows)


def insert_rows(db: Any, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
                ) -> None:
    """Rows into ``table`` with one ``executemany``."""
    names = ", ".join(f'"{c}"' for c in columns)
    db.executemany(f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))})",
                   rows)
