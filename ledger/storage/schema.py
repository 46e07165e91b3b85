"""Before the library opens a PostgreSQL ledger: is the server there, and is the schema ours?

The schema version lives in ``xlsnap_schema`` (one row), written by the first xlsnap
that opens the database. A version above ``SCHEMA_VERSION`` was written by a newer
xlsnap: it is refused (``LedgerTooNew``, exit 3) before anything is read or written.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ledger.errors import LedgerTooNew
from ledger.storage.location import parse_postgres

#: The shape of the tables this xlsnap reads and writes.
SCHEMA_VERSION = 1
TABLE = "xlsnap_schema"


@contextmanager
def tables_guard(location: str, env: dict[str, str]) -> Iterator[None]:
    """Check the server and the schema version; while the body runs, hold a session
    lock if the library's tables are still to be made, else tell it not to make them."""
    from ledger.storage.postgres import WRITE_LOCK, connect_pg

    db = connect_pg(location, timeout=10)
    try:
        check_version(db, parse_postgres(location).shown)
        if db.table_exists("xlsnap_events") and db.table_exists("xlsnap_snapshots"):
            env["CREATE_TABLE"] = "no"
            yield
            return
        db.execute("SELECT pg_advisory_lock(?)", (WRITE_LOCK + 1,))
        yield
    finally:
        db.close()  # ends the session, and its lock


def check_version(db: object, where: str) -> int:
    """The schema version of the PostgreSQL ledger behind ``db`` (recorded if new);
    ``LedgerTooNew`` if a newer xlsnap made it."""
    from ledger.storage.postgres import PgDb

    assert isinstance(db, PgDb)
    if not db.table_exists(TABLE):
        cur = db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        cur.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (version INTEGER NOT NULL)")
        if cur.execute(f"SELECT COUNT(*) FROM {TABLE}").fetchone()[0] == 0:
            cur.execute(f"INSERT INTO {TABLE}(version) VALUES (?)", (SCHEMA_VERSION,))
        cur.execute("COMMIT")
    row = db.execute(f"SELECT MAX(version) FROM {TABLE}").fetchone()
    version = int(row[0]) if row and row[0] is not None else SCHEMA_VERSION
    if version > SCHEMA_VERSION:
        from ledger.actor import VERSION

        raise LedgerTooNew(
            f"the ledger at {where} has schema version {version}, made by a newer xlsnap; "
            f"this xlsnap ({VERSION}) knows schema version {SCHEMA_VERSION}: upgrade xlsnap")
    return version
