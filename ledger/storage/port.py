"""What the ledger's code needs from a database, whichever backend holds it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from ledger.storage.location import is_postgres


class LedgerDb(Protocol):
    """A connection to a ledger database.

    A ``LedgerDb`` is a DB-API connection in SQLite's dialect (``?`` parameters,
    ``BEGIN IMMEDIATE`` for a write transaction, ``BEGIN`` for a consistent read,
    ``executescript`` for the schema, rows readable by index and by column name, errors
    of ``sqlite3``'s classes), plus how the library's event table is read: its name,
    its position column, the originator id as the text SQLite stores (32 hex digits),
    and whether positions are dense (SQLite's rowid) or may skip numbers (PostgreSQL's
    ``notification_id`` after a rolled-back insert). For speed on a server: ``pipeline``
    (writes not waiting on each other), ``insert_rows`` (many rows at once: ``COPY``),
    ``stream`` (a long read other statements may interleave with) and ``scan`` (a long
    read that has the connection to itself, streamed). ``open_db`` picks the adapter.
    """

    backend: str
    events: str
    pos: str
    oid_col: str
    dense: bool
    row_factory: Any

    def execute(self, sql: str, params: Iterable[Any] = ...) -> Any: ...
    def executemany(self, sql: str, rows: Iterable[Iterable[Any]]) -> Any: ...
    def executescript(self, ddl: str) -> Any: ...
    def cursor(self) -> Any: ...
    def close(self) -> None: ...
    def oid_param(self, domain_id: str) -> Any: ...
    def table_exists(self, name: str) -> bool: ...
    def stream(self, sql: str, params: Iterable[Any] = ()) -> Iterator[Any]: ...
    def scan(self, sql: str, params: Iterable[Any] = ()) -> Iterator[Any]: ...
    def pipeline(self) -> AbstractContextManager[None]: ...
    def insert_rows(self, table: str, columns: Sequence[str],
                    rows: Iterable[Sequence[Any]]) -> None: ...


def db_of(handle: Any) -> LedgerDb:
    """The connection behind a connection or one of its cursors (a plain ``sqlite3``
    connection is read as a SQLite ledger)."""
    db = getattr(handle, "connection", handle)
    if not hasattr(db, "table_exists"):
        from ledger.storage.sqlite import PlainSqlite

        return PlainSqlite(db)  # type: ignore[return-value]
    return db  # type: ignore[no-any-return]


def event_columns(db: Any, alias: str = "") -> str:
    """``position, originator_id, originator_version, topic, state`` in ``db``'s dialect
    (of the event table named ``alias`` in the query, if given)."""
    d = db_of(db)
    a = f"{alias}." if alias else ""
    return (f"{a}{d.pos}, {d.oid_col.format(a=a)}, {a}originator_version, {a}topic, "
            f"{a}state")


def open_db(location: str, read_only: bool = False, timeout: float = 30.0) -> LedgerDb:
    """A connection to the ledger at ``location`` (a file path or a ``postgresql://`` URL)."""
    if is_postgres(location):
        from ledger.storage.postgres import connect_pg

        return connect_pg(location, timeout)
    from ledger.storage.sqlite import connect_sqlite

    return connect_sqlite(location, read_only, timeout)
