"""Before the library opens a PostgreSQL ledger: is the server there, and is the schema ours?

The schema version lives in ``xlsnap_schema`` (one row), written by the first xlsnap
that opens the database. A version above ``SCHEMA_VERSION`` was written by a newer
xlsnap: it is refused (``LedgerTooNew``, exit 3) before anything is read or written.
"""

from __future__ import annotations

from ledger.errors import LedgerTooNew
from ledger.storage.location import parse_postgres

#: The shape of the tables this xlsnap reads and writes.
SCHEMA_VERSION = 1
TABLE = "xlsnap_schema"


def check_reachable(location: str) -> int:
    """Connect once (errors as ``connect_pg`` raises them), record or check the schema
    version; returns the version found."""
    from ledger.storage.postgres import connect_pg

    db = connect_pg(location, timeout=10)
    try:
        return _check_version(db, parse_postgres(location).shown)
    finally:
        db.close()


def _check_version(db: object, where: str) -> int:
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
