"""``xlsnap ledger copy``: a host's SQLite ledger into a shared PostgreSQL one."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from uuid import UUID

from ledger.entries import iter_rows, read_row
from ledger.errors import InvalidRequest
from ledger.storage.location import is_postgres, shown
from ledger.storage.port import LedgerDb, open_db
from ledger.tree_heads import (
    HEADS_TABLE, LEAVES_TABLE, create_tables, has_tables, iter_cached_leaves, recorded_heads,
)

COPIES_TABLE = "xlsnap_copies"
_COPIES_SCHEMA = (f"CREATE TABLE IF NOT EXISTS {COPIES_TABLE} (first_leaf BYTEA PRIMARY KEY, "
                  "source TEXT NOT NULL, events BIGINT NOT NULL, copied_at DOUBLE PRECISION "
                  "NOT NULL)")


@dataclass
class CopyResult:
    """What a copy did, for the user."""

    events: int = 0
    domains: list[str] = field(default_factory=list)
    heads: int = 0
    heads_left: int = 0
    reseal: str = ""


def copy_ledger(source: str, target: str) -> CopyResult:
    """Copy the SQLite ledger ``source`` into the PostgreSQL ledger ``target``.

    Every event is inserted in its source order, in one transaction that holds the
    library's own lock on the event table (so the copied block's notification ids are in
    commit order, as the library's inserts are). Nothing is merged: a domain the target
    already holds is refused, and so is a source copied before (``xlsnap_copies`` keeps
    the leaf hash of each source's first event). The Merkle leaves of the copied events
    are the source's own (an entry encodes the originator id as SQLite stores it), so into
    an empty target the tree heads and the leaf cache travel as they are, still valid;
    into a target that already holds events they cannot, and the result says to seal.
    """
    if is_postgres(source) or not is_postgres(target):
        raise InvalidRequest("ledger copy goes from a SQLite file (--from) to a "
                             "postgresql:// URL (--to)")
    src = open_db(source, read_only=True)
    try:
        if not src.table_exists(src.events):
            raise InvalidRequest(f"not an xlsnap ledger: {source}")
        src.execute("BEGIN")
        first = read_row(src, 1)
        if first is None:
            raise InvalidRequest(f"the ledger {source} holds no events: nothing to copy")
        names = _domain_names(src)
        dst = open_db(target)
        try:
            return _copy(src, dst, source, first.leaf(), names)
        finally:
            dst.close()
    finally:
        src.close()


def _domain_names(src: LedgerDb) -> dict[str, str]:
    """originator id (hex) -> domain name, from the source's read model when it has one."""
    ids = [r[0] for r in src.execute(f"SELECT DISTINCT originator_id FROM {src.events}")]
    names = {i: i for i in ids}
    if src.table_exists("view_domains"):
        for domain_id, name in src.execute("SELECT domain_id, name FROM view_domains"):
            hexed = UUID(domain_id).hex
            if hexed in names:
                names[hexed] = name
    return names


def _copy(src: LedgerDb, dst: LedgerDb, source: str, first_leaf: bytes,
          names: dict[str, str]) -> CopyResult:
    cur = dst.cursor()
    cur.execute("BEGIN IMMEDIATE")
    try:
        cur.execute(f"LOCK TABLE {dst.events} IN EXCLUSIVE MODE")
        cur.execute(_COPIES_SCHEMA)
        done = cur.execute(f"SELECT source, copied_at FROM {COPIES_TABLE} WHERE first_leaf=?",
                           (first_leaf,)).fetchone()
        if done is not None:
            when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(done[1]))
            raise InvalidRequest(f"this ledger was already copied into {shown(dst_url(dst))} "
                                 f"(from {done[0]} at {when}); refusing to copy it twice")
        taken = [names[r[0]] for r in cur.execute(
            f"SELECT DISTINCT replace(originator_id::text, '-', '') FROM {dst.events} "
            "WHERE originator_id = ANY(?)", ([UUID(i) for i in names],))]
        if taken:
            raise InvalidRequest(
                f"the target already holds domain(s) {', '.join(sorted(taken))}: refusing to "
                "merge their ledgers (no copy made)")
        before = int(cur.execute(f"SELECT COUNT(*) FROM {dst.events}").fetchone()[0])
        result = CopyResult(domains=sorted(names.values()))
        result.events = _insert_events(src, dst)
        ids = [int(r[0]) for r in cur.execute(
            f"SELECT notification_id FROM {dst.events} ORDER BY notification_id DESC "
            "LIMIT ?", (result.events,))][::-1]
        _carry_heads(src, dst, before, ids, result)
        cur.execute(f"INSERT INTO {COPIES_TABLE}(first_leaf, source, events, copied_at) "
                    "VALUES (?, ?, ?, ?)", (first_leaf, source, result.events, time.time()))
    except BaseException:
        cur.execute("ROLLBACK")
        raise
    cur.execute("COMMIT")
    return result


def dst_url(dst: LedgerDb) -> str:
    return getattr(dst, "where").shown


def _insert_events(src: LedgerDb, dst: LedgerDb) -> int:
    count = 0
    raw = getattr(dst, "raw")
    with raw.cursor() as cur, cur.copy(
            f"COPY {dst.events} (originator_id, originator_version, topic, state) "
            "FROM STDIN") as copy:
        for _, oid, version, topic, state in iter_rows(src):
            copy.write_row((UUID(str(oid)), version, topic, state))
            count += 1
    return count


def _carry_heads(src: LedgerDb, dst: LedgerDb, before: int, ids: list[int],
                 result: CopyResult) -> None:
    heads = recorded_heads(src) if has_tables(src) else []
    if not heads:
        result.reseal = "the source was never sealed: seal the target"
        return
    create_tables(dst)
    target_heads = int(dst.execute(f"SELECT COUNT(*) FROM {HEADS_TABLE}").fetchone()[0])
    if before or target_heads:
        result.heads_left = len(heads)
        result.reseal = (f"the target already held {before} events, so the source's "
                         f"{len(heads)} tree head(s) do not describe its log: seal the "
                         "target ('xlsnap --ledger URL seal') and ship that head")
        return
    leaves = [(ids[p - 1], leaf) for p, leaf in iter_cached_leaves(src) if p <= len(ids)]
    dst.executemany(f"INSERT INTO {LEAVES_TABLE}(position, leaf) VALUES (?, ?)", leaves)
    for row in src.execute(f"SELECT seq, tree_size, root_hash, timestamp_ms, public_key, "
                           f"signature, frontier FROM {HEADS_TABLE} ORDER BY seq"):
        dst.execute(f"INSERT INTO {HEADS_TABLE}(seq, tree_size, root_hash, timestamp_ms, "
                    "public_key, signature, frontier) VALUES (?, ?, ?, ?, ?, ?, ?)", tuple(row))
    dst.execute(f"SELECT setval(pg_get_serial_sequence('{HEADS_TABLE}', 'seq'), "
                f"(SELECT MAX(seq) FROM {HEADS_TABLE}))")
    result.heads = len(heads)
    result.reseal = (f"tree heads travelled (key {heads[-1].key_id[:16]}); seal the target "
                     "with the same key file ('xlsnap --ledger URL seal --key FILE')")
