"""Sealing: extend the Merkle tree over the events recorded since the last seal and
record a new signed tree head."""

from __future__ import annotations

import time
from dataclasses import replace

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.entries import MalformedRow, iter_rows, log_size, row_leaf
from ledger.errors import LedgerError
from ledger.merkle import Frontier
from ledger.signing import key_id, public_bytes, sign
from ledger.tree_heads import (
    HeadFormatError, TreeHead, cached_leaf_count, create_tables, insert_head, last_head,
    last_cached_position, signed_data, store_leaves,
)
from ledger.storage.port import LedgerDb, open_db

_FLUSH = 10_000


class SealRefused(LedgerError):
    """The ledger cannot be sealed as it is: the key or the log disagrees with the last head."""


def seal_ledger(location: str, key: Ed25519PrivateKey, lock_timeout: float = 30.0,
                now_ms: int | None = None) -> tuple[TreeHead, int]:
    """Record a signed head over the whole log; returns it and how many events were new.

    A seal never rehashes the sealed past: it resumes from the last head's frontier,
    which it trusts only after checking the head's signature, its key, and that the
    frontier folds to the signed root. So a new head always extends the old tree (the
    two are consistent by construction), and an event altered after an earlier seal
    stays detectable by ``verify``. Everything happens in one write transaction.
    """
    db = open_db(location, timeout=lock_timeout)
    try:
        create_tables(db)
        db.execute("BEGIN IMMEDIATE")
        try:
            result = _seal(db, key, now_ms)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return result
    finally:
        db.close()


def _seal(db: LedgerDb, key: Ed25519PrivateKey, now_ms: int | None
          ) -> tuple[TreeHead, int]:
    public_key = public_bytes(key)
    try:
        previous = last_head(db)
    except HeadFormatError as exc:
        raise SealRefused(f"{exc}; run 'xlsnap verify'") from None
    if previous is None:
        if cached_leaf_count(db):
            raise SealRefused("the ledger has sealed leaves but no tree heads: heads were "
                              "removed; run 'xlsnap verify'")
        frontier, last_ms = Frontier(), 0
    else:
        head, frontier = previous
        _check_previous(db, head, frontier, public_key)
        last_ms = head.timestamp_ms
    sealed = frontier.size
    expected = last_cached_position(db) + 1
    dense = db.dense
    batch: list[tuple[int, bytes]] = []
    for position, *fields in iter_rows(db, start=expected):
        if position != expected and dense:
            raise SealRefused(f"position {expected} is missing from the log (the next event "
                              f"is at {position}); run 'xlsnap verify'")
        try:
            leaf = row_leaf(*fields)
        except MalformedRow as exc:
            raise SealRefused(f"the event at position {position} is malformed: {exc}") from None
        frontier.append(leaf)
        batch.append((position, leaf))
        if len(batch) >= _FLUSH:
            store_leaves(db, batch)
            batch.clear()
        expected = position + 1
    store_leaves(db, batch)
    timestamp_ms = max(now_ms if now_ms is not None else int(time.time() * 1000), last_ms)
    root = frontier.root()
    head = TreeHead(frontier.size, root, timestamp_ms, public_key,
                    sign(key, signed_data(frontier.size, root, timestamp_ms)))
    seq = insert_head(db, head, frontier)
    return replace(head, seq=seq), frontier.size - sealed


def _check_previous(db: LedgerDb, head: TreeHead, frontier: Frontier,
                    public_key: bytes) -> None:
    if head.public_key != public_key:
        raise SealRefused(
            f"this key (id {key_id(public_key)[:16]}) is not the key that signed "
            f"{head.label()} (id {head.key_id[:16]}): the signing key was replaced or the "
            "wrong key was given")
    if not head.signature_ok():
        raise SealRefused(f"{head.label()} has a bad signature; run 'xlsnap verify'")
    if frontier.root() != head.root_hash:
        raise SealRefused(f"the stored frontier of {head.label()} does not fold to its root; "
                          "run 'xlsnap verify'")
    if cached_leaf_count(db) != head.tree_size:
        raise SealRefused(f"the leaf cache holds {cached_leaf_count(db)} leaves but "
                          f"{head.label()} covers {head.tree_size}; run 'xlsnap verify'")
    size = log_size(db)
    if size < last_cached_position(db) or (db.dense and size < head.tree_size):
        raise SealRefused(f"the log ends at position {size} but {head.label()} covers "
                          f"{head.tree_size} events: events were removed; run 'xlsnap verify'")
