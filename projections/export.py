"""Exports of the log for a SIEM or an investigator, which verify without the database."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any
from uuid import UUID

import msgpack
from eventsourcing.persistence import Mapper, StoredEvent

from ledger.entries import StoredRow, iter_rows, log_size, row_leaf
from ledger.merkle import Frontier
from ledger.storage.port import db_of
from ledger.transcoder import MsgpackTranscoder
from ledger.tree_heads import TreeHead, iter_cached_leaves, recorded_heads
from projections.history import history_row
from projections.timeline import iter_operations

EXPORT_FORMAT = "xlsnap-export/1"


class ExportError(ValueError):
    """A file that is not a well-formed xlsnap export."""


# ---- writing -----------------------------------------------------------------------


def write_export(out: IO[bytes], fmt: str, db: Any, mapper: Mapper,
                 names: dict[str, str], first: int, last: int) -> int:
    """Write events ``first..last`` of the log; returns how many were written.

    A JSON-lines (or msgpack stream) export holds a header, one record per event and a
    trailer. Each event record carries what was stored (originator id, version, topic,
    and the state bytes, base64 in JSON), its position and Merkle leaf hash, and the
    same decoded fields ``xlsnap history --json`` shows. The header carries every tree
    head recorded so far and, for an export that starts after position 1, the Merkle
    frontier of the positions before it, so the roots of the heads can be recomputed
    from the export alone; the trailer's count shows a cut file. Reading an export back
    recomputes the decoded fields from the stored bytes, so what a SIEM reads is covered
    by the signed heads too.
    """
    emit = _jsonl_writer(out) if fmt == "jsonl" else _msgpack_writer(out)
    emit({"type": "header", "format": EXPORT_FORMAT, "exported_at": time.time(),
          "log_size": log_size(db), "first": first, "last": last,
          "dense": db_of(db).dense,
          "frontier": [h.hex() for h in frontier_before(db, first).hashes],
          "domains": names, "tree_heads": [h.to_json() for h in recorded_heads(db)]})
    count = 0
    operations = iter_operations(db, first, last)
    operation = next(operations, None)
    for raw in iter_rows(db, first, last):
        row = StoredRow(*raw)
        while operation is not None and operation[0] < row.position:
            operation = next(operations, None)
        of = operation[1:] if operation is not None and operation[0] == row.position else None
        emit(event_record(row, mapper, names, of, fmt))
        count += 1
    emit({"type": "end", "events": count})
    return count


def event_record(row: StoredRow, mapper: Mapper, names: dict[str, str],
                 operation: tuple[str | None, str | None] | None, fmt: str) -> dict[str, Any]:
    """One event's export record: stored fields, position, leaf, and decoded fields
    (with the operation's kind, and its id for the Registered event saved with it)."""
    decoded = decoded_fields(row, mapper, names)
    operation_id, kind = operation or (None, None)
    decoded["operation_id"] = decoded["operation_id"] or operation_id
    decoded["operation_kind"] = kind
    stored: dict[str, Any] = {
        "type": "event", "position": row.position, "leaf_hash": row.leaf().hex(),
        "originator_id": row.originator_id, "originator_version": row.originator_version,
        "topic": row.topic,
        "state": base64.b64encode(row.state).decode() if fmt == "jsonl" else row.state}
    return {**stored, **decoded}


def decoded_fields(row: StoredRow, mapper: Mapper, names: dict[str, str]) -> dict[str, Any]:
    event = mapper.to_domain_event(StoredEvent(UUID(row.originator_id), row.originator_version,
                                               row.topic, row.state))
    decoded = history_row(row.position, event, names)
    del decoded["position"], decoded["version"]
    return decoded


def export_mapper() -> Mapper:
    """The mapper the ledger uses, without opening a ledger."""
    return Mapper(transcoder=MsgpackTranscoder())


def frontier_before(db: Any, first: int) -> Frontier:
    """The Merkle frontier of positions ``1..first-1``: sealed leaves from the cache,
    the rest hashed from the log (a verifier checks it against the signed roots)."""
    frontier = Frontier()
    last = 0
    for last, leaf in iter_cached_leaves(db, 1, first - 1):
        frontier.append(leaf)
    for raw in iter_rows(db, last + 1, first - 1):
        frontier.append(row_leaf(*raw[1:]))
    return frontier


def _jsonl_writer(out: IO[bytes]) -> Any:
    def emit(record: dict[str, Any]) -> None:
        out.write(json.dumps(record, default=str, separators=(",", ":")).encode() + b"\n")
    return emit


def _msgpack_writer(out: IO[bytes]) -> Any:
    packer = msgpack.Packer(default=str, use_bin_type=True)

    def emit(record: dict[str, Any]) -> None:
        out.write(packer.pack(record))
    return emit


# ---- reading -----------------------------------------------------------------------


@dataclass
class ExportReader:
    """Reads an export; ``rows()`` yields verification rows, then sets what it saw."""

    source: IO[bytes]
    fmt: str = ""
    header: dict[str, Any] = field(default_factory=dict)
    records: int = 0
    last_position: int = 0
    trailer: dict[str, Any] | None = None
    problems: list[tuple[str, int | None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._items = self._items_of(self.source)
        first = next(self._items, None)
        if not isinstance(first, dict) or first.get("type") != "header" \
                or first.get("format") != EXPORT_FORMAT:
            raise ExportError(f"not an xlsnap export (no {EXPORT_FORMAT} header)")
        self.header = first

    @property
    def first(self) -> int:
        return int(self.header.get("first", 1))

    def heads(self) -> list[TreeHead]:
        return [TreeHead.from_json(h) for h in self.header.get("tree_heads", [])]

    def frontier(self) -> Frontier:
        try:
            return Frontier(self.first - 1, [bytes.fromhex(h) for h in self.header["frontier"]])
        except (KeyError, TypeError, ValueError) as exc:
            raise ExportError(f"the export's frontier is malformed: {exc}") from None

    def dense(self) -> bool:
        """Are the export's positions dense (a SQLite ledger's), so a gap is a finding?"""
        return self.header.get("dense", True) is not False

    def complete(self) -> bool:
        """Does the export claim to reach the end of the log as it was?"""
        return self.header.get("last") == self.header.get("log_size")

    def rows(self, mapper: Mapper | None = None
             ) -> Iterator[tuple[int, object, object, object, object, bytes | None]]:
        """``(position, originator_id, version, topic, state, claimed leaf)`` per event.

        With ``mapper``, each record's decoded fields are checked against its stored
        bytes; a mismatch is added to ``problems``.
        """
        names = self.header.get("domains") or {}
        for item in self._items:
            if isinstance(item, dict) and item.get("type") == "end":
                self.trailer = item
                break
            try:
                position, oid, version, topic, state, claimed = self._fields(item)
            except (KeyError, TypeError, ValueError) as exc:
                raise ExportError(f"malformed record after position {self.last_position}: "
                                  f"{exc}") from None
            self.records += 1
            self.last_position = position
            if mapper is not None:
                self._check_decoded(item, StoredRow(position, oid, version, topic, state),
                                    mapper, names)
            yield position, oid, version, topic, state, claimed
        self._check_end()

    def _fields(self, item: Any) -> tuple[int, Any, Any, Any, bytes, bytes]:
        if not isinstance(item, dict) or item.get("type") != "event":
            raise ValueError("not an event record")
        state = item["state"]
        state = base64.b64decode(state, validate=True) if isinstance(state, str) else state
        return (int(item["position"]), item["originator_id"], item["originator_version"],
                item["topic"], state, bytes.fromhex(item["leaf_hash"]))

    def _check_decoded(self, item: dict[str, Any], row: StoredRow, mapper: Mapper,
                       names: dict[str, str]) -> None:
        try:
            expected = decoded_fields(row, mapper, names)
        except Exception:  # noqa: BLE001 - undecodable bytes: the leaf check reports them
            return
        normal = self._normalise
        if expected["operation_id"] is None:  # a Registered event: filled from its operation
            del expected["operation_id"]
        if any(normal(item.get(k)) != normal(v) for k, v in expected.items()):
            self.problems.append((f"the decoded fields of the event at position {row.position} "
                                  "do not match its stored bytes", row.position))

    def _normalise(self, value: Any) -> Any:
        if self.fmt == "jsonl":
            return json.loads(json.dumps(value, default=str))
        return msgpack.unpackb(msgpack.packb(value, default=str, use_bin_type=True), raw=False,
                               strict_map_key=False)

    def _check_end(self) -> None:
        if self.trailer is None:
            self.problems.append((f"the export ends without its trailer after position "
                                  f"{self.last_position}: the file was cut",
                                  self.last_position + 1))
        elif self.trailer.get("events") != self.records:
            self.problems.append((f"the trailer counts {self.trailer.get('events')} events, the "
                                  f"export holds {self.records}", None))
        expected_last = self.header.get("last")
        reached = self.last_position if self.records else self.first - 1
        if isinstance(expected_last, int) and reached < expected_last \
                and self.trailer is not None:
            self.problems.append((f"the export should reach position {expected_last} but ends "
                                  f"at {reached}", reached + 1))

    def _items_of(self, source: IO[bytes]) -> Iterator[Any]:
        head = source.peek(1)[:1] if hasattr(source, "peek") else b""
        if head == b"{":
            self.fmt = "jsonl"
            return self._json_items(source)
        self.fmt = "msgpack"
        return iter(msgpack.Unpacker(source, raw=False, strict_map_key=False))

    @staticmethod
    def _json_items(source: IO[bytes]) -> Iterator[Any]:
        for number, line in enumerate(source, start=1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise ExportError(f"line {number} is not JSON: {exc}") from None


def open_export(path: str) -> ExportReader:
    """Open an export file (JSON lines or msgpack, told apart by the first byte)."""
    handle = open(path, "rb")  # noqa: SIM115 - the reader owns it
    try:
        return ExportReader(handle)
    except (ExportError, ValueError, msgpack.UnpackException) as exc:
        handle.close()
        raise ExportError(f"{path}: {exc}") from None
