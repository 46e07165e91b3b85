"""Signed tree heads: what is signed, their JSON file form, and their tables in the ledger."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ledger.merkle import HASH_SIZE, Frontier
from ledger.signing import key_id, signature_valid
from ledger.storage.port import LedgerDb, db_of

HEAD_FORMAT = "xlsnap-tree-head/1"
HEADS_TABLE = "ledger_tree_heads"
LEAVES_TABLE = "ledger_leaves"
_TREE_HEAD_SIGNATURE = struct.Struct(">BBQQ32s")

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {HEADS_TABLE} (
    seq INTEGER PRIMARY KEY, tree_size INTEGER NOT NULL, root_hash BLOB NOT NULL,
    timestamp_ms INTEGER NOT NULL, public_key BLOB NOT NULL, signature BLOB NOT NULL,
    frontier BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS {LEAVES_TABLE} (position INTEGER PRIMARY KEY, leaf BLOB NOT NULL);
"""


class HeadFormatError(ValueError):
    """A head file or row that is not a well-formed tree head."""


@dataclass(frozen=True)
class TreeHead:
    """A signed statement of the log's size and Merkle root at one moment.

    A head says "the first ``tree_size`` events of this log have Merkle root ``root_hash``",
    at ``timestamp`` (milliseconds since the epoch), signed with Ed25519 over RFC 6962's
    ``TreeHeadSignature`` structure (version v1 = 0, signature_type tree_hash = 1, uint64
    timestamp, uint64 tree_size, the 32-byte root): any CT tooling can check it.

    Heads live in a table of the ledger file (``ledger_tree_heads``), not as events: an
    event certifying the log it is part of would change the root it certifies, would be
    replayed into read models, and would need the aggregate machinery for a row that
    belongs to no domain. Each head also keeps the Merkle frontier of its size (the roots
    of the perfect subtrees covering it, at most 64 hashes), so the next seal extends the
    tree without rehashing the past; a frontier is trusted only once it folds to its
    signed root. ``ledger_leaves`` caches every sealed leaf hash: proofs need them, and
    verification uses them, once they fold to a signed root, to name the exact position
    an event was altered at. Both tables are derived and checked, never the source of truth.
    """

    tree_size: int
    root_hash: bytes
    timestamp_ms: int
    public_key: bytes
    signature: bytes
    seq: int | None = None

    def signed_data(self) -> bytes:
        return signed_data(self.tree_size, self.root_hash, self.timestamp_ms)

    def signature_ok(self) -> bool:
        return signature_valid(self.public_key, self.signed_data(), self.signature)

    @property
    def key_id(self) -> str:
        return key_id(self.public_key)

    @property
    def sealed_at(self) -> str:
        return datetime.fromtimestamp(self.timestamp_ms / 1000, timezone.utc).isoformat(
            timespec="milliseconds")

    def label(self) -> str:
        """How messages name this head: ``tree head #3 (120 events, sealed ...)``."""
        number = f" #{self.seq}" if self.seq is not None else ""
        return f"tree head{number} ({self.tree_size} events, sealed {self.sealed_at})"

    def to_json(self) -> dict[str, Any]:
        return {
            "format": HEAD_FORMAT, "tree_size": self.tree_size,
            "root_hash": self.root_hash.hex(), "timestamp": self.timestamp_ms,
            "sealed_at": self.sealed_at, "public_key": self.public_key.hex(),
            "key_id": self.key_id, "signature": self.signature.hex(),
            "signed_data": "RFC 6962 TreeHeadSignature (v1, tree_hash), Ed25519",
            **({"seq": self.seq} if self.seq is not None else {}),
        }

    @classmethod
    def from_json(cls, data: Any) -> TreeHead:
        """A head from its JSON form; ``HeadFormatError`` names what is wrong."""
        if not isinstance(data, dict) or data.get("format") != HEAD_FORMAT:
            raise HeadFormatError(f"not a tree head (format is not {HEAD_FORMAT!r})")
        try:
            head = cls(
                tree_size=_int(data["tree_size"]), root_hash=bytes.fromhex(data["root_hash"]),
                timestamp_ms=_int(data["timestamp"]),
                public_key=bytes.fromhex(data["public_key"]),
                signature=bytes.fromhex(data["signature"]),
                seq=_int(data["seq"]) if data.get("seq") is not None else None)
        except (KeyError, TypeError, ValueError) as exc:
            raise HeadFormatError(f"malformed tree head: {type(exc).__name__}: {exc}") from None
        if len(head.root_hash) != HASH_SIZE:
            raise HeadFormatError("malformed tree head: root_hash is not 32 bytes")
        return head


def signed_data(tree_size: int, root_hash: bytes, timestamp_ms: int) -> bytes:
    """RFC 6962 §3.5 ``TreeHeadSignature``: the exact bytes a head's signature covers."""
    return _TREE_HEAD_SIGNATURE.pack(0, 1, timestamp_ms, tree_size, root_hash)


def dumps_head(head: TreeHead) -> str:
    return json.dumps(head.to_json(), indent=2) + "\n"


def loads_head(text: str) -> TreeHead:
    try:
        return TreeHead.from_json(json.loads(text))
    except json.JSONDecodeError as exc:
        raise HeadFormatError(f"not JSON: {exc}") from None


def _int(value: Any) -> int:
    if type(value) is not int or value < 0:
        raise ValueError(f"{value!r} is not a non-negative integer")
    return value


# ---- tables in the ledger file -------------------------------------------------------


def has_tables(db: LedgerDb) -> bool:
    return db_of(db).table_exists(HEADS_TABLE)


def create_tables(db: LedgerDb) -> None:
    db.executescript(SCHEMA)


def recorded_heads(db: LedgerDb) -> list[TreeHead]:
    """Every head recorded in the ledger, oldest first (none if never sealed)."""
    if not has_tables(db):
        return []
    rows = db.execute(f"SELECT seq, tree_size, root_hash, timestamp_ms, public_key, signature "
                      f"FROM {HEADS_TABLE} ORDER BY seq").fetchall()
    return [_head_row(*row) for row in rows]


def _head_row(seq: Any, size: Any, root: Any, ts: Any, pub: Any, sig: Any) -> TreeHead:
    """A head from its table row; ``HeadFormatError`` for a row of the wrong types."""
    if not all(type(v) is int for v in (seq, size, ts)) or \
            not all(type(v) is bytes for v in (root, pub, sig)):
        raise HeadFormatError(f"recorded tree head #{seq} has fields of the wrong types")
    return TreeHead(size, root, ts, pub, sig, seq)


def last_head(db: LedgerDb) -> tuple[TreeHead, Frontier] | None:
    """The newest head and its stored frontier, or ``None``."""
    if not has_tables(db):
        return None
    row = db.execute(f"SELECT seq, tree_size, root_hash, timestamp_ms, public_key, signature, "
                     f"frontier FROM {HEADS_TABLE} ORDER BY seq DESC LIMIT 1").fetchone()
    if row is None:
        return None
    *fields, blob = row
    head = _head_row(*fields)
    if type(blob) is not bytes:
        raise HeadFormatError(f"{head.label()}: stored frontier is malformed")
    hashes = [blob[i:i + HASH_SIZE] for i in range(0, len(blob), HASH_SIZE)]
    try:
        frontier = Frontier(head.tree_size, hashes)
    except ValueError as exc:
        raise HeadFormatError(f"{head.label()}: stored frontier is malformed: {exc}") from None
    return head, frontier


def insert_head(db: LedgerDb, head: TreeHead, frontier: Frontier) -> int:
    row = db.execute(
        f"INSERT INTO {HEADS_TABLE}(tree_size, root_hash, timestamp_ms, public_key, signature, "
        "frontier) VALUES (?, ?, ?, ?, ?, ?) RETURNING seq",
        (head.tree_size, head.root_hash, head.timestamp_ms, head.public_key, head.signature,
         b"".join(frontier.hashes))).fetchone()
    return int(row[0])


def cached_leaf_count(db: LedgerDb) -> int:
    """How many leaves the cache holds (on a dense log, its highest position)."""
    if not has_tables(db):
        return 0
    what = "COALESCE(MAX(position), 0)" if db_of(db).dense else "COUNT(*)"
    return int(db.execute(f"SELECT {what} FROM {LEAVES_TABLE}").fetchone()[0])


def last_cached_position(db: LedgerDb) -> int:
    """The position of the newest sealed event (0 if none)."""
    if not has_tables(db):
        return 0
    return int(db.execute(f"SELECT COALESCE(MAX(position), 0) FROM {LEAVES_TABLE}"
                          ).fetchone()[0])


def leaf_index(db: LedgerDb, position: int) -> int:
    """The Merkle leaf index of the sealed event at ``position`` (its ordinal, from 0)."""
    if db_of(db).dense:
        return position - 1
    return int(db.execute(f"SELECT COUNT(*) FROM {LEAVES_TABLE} WHERE position < ?",
                          (position,)).fetchone()[0])


def iter_cached_leaves(db: LedgerDb, start: int = 1, stop: int | None = None
                       ) -> Iterator[tuple[int, bytes]]:
    """``(position, leaf hash)`` of the leaf cache, in order (empty if never sealed)."""
    if not has_tables(db):
        return
    upper = (1 << 63) - 1 if stop is None else stop
    for position, leaf in db_of(db).stream(
            f"SELECT position, leaf FROM {LEAVES_TABLE} WHERE position >= ? AND position <= ? "
            "ORDER BY position", (start, upper)):
        yield position, bytes(leaf) if not isinstance(leaf, bytes) else leaf


def cached_leaves(db: LedgerDb, size: int) -> list[bytes]:
    """Leaf hashes 1..``size`` from the cache; ``HeadFormatError`` if any is missing."""
    leaves = [leaf for _, leaf in iter_cached_leaves(db, 1, size)]
    if len(leaves) != size:
        raise HeadFormatError(f"the leaf cache holds {len(leaves)} of {size} leaves")
    return leaves


def store_leaves(db: LedgerDb, leaves: list[tuple[int, bytes]]) -> None:
    db.executemany(f"INSERT INTO {LEAVES_TABLE}(position, leaf) VALUES (?, ?) "
                   "ON CONFLICT(position) DO UPDATE SET leaf=excluded.leaf", leaves)
