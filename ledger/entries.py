"""The stored log as Merkle entries: each stored event row, in commit order, as bytes."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator
from typing import Any, NamedTuple

from ledger.merkle import leaf_hash
from ledger.storage.port import LedgerDb, db_of, event_columns, open_db

ENTRY_FORMAT = 1
#: The library's event table in a SQLite ledger.
EVENTS_TABLE = "stored_events"
_HEAD = struct.Struct(">BH")
_VERSION_TOPIC = struct.Struct(">QH")
_STATE_LEN = struct.Struct(">I")
_sha256 = hashlib.sha256


class MalformedRow(ValueError):
    """A stored row whose fields have the wrong types or sizes to be an event."""


class StoredRow(NamedTuple):
    """One row of the events table, as stored."""

    position: int
    originator_id: str
    originator_version: int
    topic: str
    state: bytes

    def entry(self) -> bytes:
        return entry_bytes(self.originator_id, self.originator_version, self.topic, self.state)

    def leaf(self) -> bytes:
        return leaf_hash(self.entry())


def entry_bytes(originator_id: object, version: object, topic: object, state: object) -> bytes:
    """The Merkle entry of one stored event; ``MalformedRow`` if a field is not as stored.

    An entry covers everything the library stores for an event, in an unambiguous,
    length-prefixed encoding (big-endian, as TLS structures are):

        uint8   format            1
        uint16  len(originator_id) || originator_id   (the stored text, UTF-8)
        uint64  originator_version
        uint16  len(topic)        || topic            (UTF-8)
        uint32  len(state)        || state            (the stored msgpack bytes)

    The position of an event is the library's notification id (SQLite's rowid, dense
    from 1; PostgreSQL's ``notification_id``, which may skip numbers). The Merkle leaf
    index is the event's ordinal in that order. Rows are read with plain SQL through the
    storage port, not through the library, so the bytes hashed are exactly the bytes
    stored (a PostgreSQL uuid is read as the 32 hex digits SQLite stores).
    """
    return _joined(b"", originator_id, version, topic, state)


def row_leaf(originator_id: object, version: object, topic: object, state: object) -> bytes:
    """The Merkle leaf hash of one stored event (hashed in one pass, for long logs)."""
    return _sha256(_joined(b"\x00", originator_id, version, topic, state)).digest()


def _joined(prefix: bytes, originator_id: object, version: object, topic: object,
            state: object) -> bytes:
    if not (type(originator_id) is str and type(topic) is str and type(version) is int
            and type(state) is bytes):
        raise MalformedRow(
            "fields have the wrong types (originator_id "
            f"{type(originator_id).__name__}, version {type(version).__name__}, "
            f"topic {type(topic).__name__}, state {type(state).__name__})")
    oid = originator_id.encode()
    top = topic.encode()
    try:
        return b"".join((prefix, _HEAD.pack(ENTRY_FORMAT, len(oid)), oid,
                         _VERSION_TOPIC.pack(version, len(top)), top,
                         _STATE_LEN.pack(len(state)), state))
    except struct.error:
        raise MalformedRow("a field is out of range or too large to encode") from None


def parse_entry(entry: bytes) -> tuple[str, int, str, bytes]:
    """``(originator_id, version, topic, state)`` back from an entry's bytes."""
    try:
        fmt, n = _HEAD.unpack_from(entry, 0)
        if fmt != ENTRY_FORMAT:
            raise MalformedRow(f"unknown entry format {fmt}")
        at = _HEAD.size
        oid = entry[at:at + n].decode()
        at += n
        version, n = _VERSION_TOPIC.unpack_from(entry, at)
        at += _VERSION_TOPIC.size
        topic = entry[at:at + n].decode()
        at += n
        (n,) = _STATE_LEN.unpack_from(entry, at)
        at += _STATE_LEN.size
        state = entry[at:at + n]
    except (struct.error, UnicodeDecodeError) as exc:
        raise MalformedRow(f"not an entry: {exc}") from None
    if at + n != len(entry):
        raise MalformedRow("entry has trailing or missing bytes")
    return oid, version, topic, state


def connect_readonly(location: str, timeout: float = 30.0) -> LedgerDb:
    """A read-only connection to a ledger (never creates it)."""
    return open_db(location, read_only=True, timeout=timeout)


def iter_rows(db: Any, start: int = 1, stop: int | None = None
              ) -> Iterator[tuple[int, object, object, object, object]]:
    """Raw ``(position, originator_id, version, topic, state)`` rows in commit order."""
    d = db_of(db)
    upper = (1 << 63) - 1 if stop is None else stop
    return d.stream(
        f"SELECT {event_columns(d)} FROM {d.events} "
        f"WHERE {d.pos} >= ? AND {d.pos} <= ? ORDER BY {d.pos}", (start, upper))


def read_row(db: Any, position: int) -> StoredRow | None:
    """The stored row at ``position``, or ``None``."""
    d = db_of(db)
    row = db.execute(f"SELECT {event_columns(d)} FROM {d.events} WHERE {d.pos} = ?",
                     (position,)).fetchone()
    return StoredRow(*row) if row else None


def log_size(db: Any) -> int:
    """The highest position in the log (0 when empty)."""
    d = db_of(db)
    return int(db.execute(f"SELECT COALESCE(MAX({d.pos}), 0) FROM {d.events}").fetchone()[0])


def event_count(db: Any) -> int:
    """How many events the log holds."""
    d = db_of(db)
    if d.dense:
        return log_size(db)
    return int(db.execute(f"SELECT COUNT(*) FROM {d.events}").fetchone()[0])
