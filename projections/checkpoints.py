"""Checkpoints of one domain's projected tree, so replay never applies more than
``EVERY`` of its events."""

from __future__ import annotations

import hashlib
import sqlite3
import zlib
from typing import Any, NamedTuple

import msgpack

from ledger.entries import read_row

#: A domain gets a checkpoint every this many of its events (a replay applies fewer).
EVERY = 2000
#: Bumped whenever the tree tables change shape: older checkpoints are then ignored.
FORMAT = "tree/1"

SCHEMA = """
CREATE TABLE IF NOT EXISTS view_checkpoints (
    domain_id TEXT NOT NULL, position INTEGER NOT NULL, version INTEGER NOT NULL,
    leaf BLOB NOT NULL, state BLOB NOT NULL, digest BLOB NOT NULL,
    PRIMARY KEY (domain_id, position));
"""
_DOMAIN_COLUMNS = "domain_id, name, uuid, current, in_flight"
_SNAPSHOT_COLUMNS = ("domain_id, name, parent, created_at, position, kind, state, disk_only, "
                     "complete, record")


class Checkpoint(NamedTuple):
    domain_id: str
    position: int
    version: int
    leaf: bytes
    state: bytes
    digest: bytes

    def label(self) -> str:
        return f"the checkpoint of domain {self.domain_id} at position {self.position}"


def due(version: int, every: int = EVERY) -> bool:
    return version % every == 0


def capture(cur: Any, domain_id: str) -> bytes:
    """One domain's rows of the tree tables, serialised deterministically."""
    domain = cur.execute(f"SELECT {_DOMAIN_COLUMNS} FROM view_domains WHERE domain_id=?",
                         (domain_id,)).fetchone()
    snapshots = cur.execute(f"SELECT {_SNAPSHOT_COLUMNS} FROM view_snapshots WHERE domain_id=? "
                            "ORDER BY position, name", (domain_id,)).fetchall()
    body = {"format": FORMAT, "domain": list(domain) if domain else None,
            "snapshots": [list(r) for r in snapshots]}
    return zlib.compress(msgpack.packb(body, use_bin_type=True), 6)


def take(cur: Any, domain_id: str, position: int, version: int) -> None:
    """Record a checkpoint of ``domain_id`` as it stands after the event at ``position``.

    A checkpoint is taken by the projection itself, right after applying a domain's
    event whose version is a multiple of ``EVERY``: it holds that domain's rows of the
    tree tables (msgpack, zlib), the digest of those bytes, and the leaf hash of the
    event at its position, which binds it to the log it was derived from. Replay uses
    one only if its digest holds and the leaf of the event stored at its position is
    still the one it was bound to; ``verify`` checks every binding against the log, and
    ``verify --deep`` derives every checkpoint again from the log and compares.
    """
    row = read_row(cur, position)
    if row is None:
        return
    state = capture(cur, domain_id)
    cur.execute("INSERT INTO view_checkpoints(domain_id, position, version, leaf, state, "
                "digest) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(domain_id, position) DO UPDATE "
                "SET version=excluded.version, leaf=excluded.leaf, state=excluded.state, "
                "digest=excluded.digest",
                (domain_id, position, version, row.leaf(), state, hashlib.sha256(state).digest()))


def latest(db: Any, domain_id: str, position: int) -> Checkpoint | None:
    """The newest checkpoint of ``domain_id`` at or before ``position``."""
    try:
        row = db.execute("SELECT domain_id, position, version, leaf, state, digest "
                         "FROM view_checkpoints WHERE domain_id=? AND position<=? "
                         "ORDER BY position DESC LIMIT 1", (domain_id, position)).fetchone()
    except sqlite3.OperationalError:  # no projection tables: the log alone
        return None
    return Checkpoint(*row) if row else None


def fault(db: Any, checkpoint: Checkpoint) -> str | None:
    """Why ``checkpoint`` cannot be used, or ``None`` when it holds."""
    if hashlib.sha256(checkpoint.state).digest() != checkpoint.digest:
        return f"{checkpoint.label()} does not match its digest"
    row = read_row(db, checkpoint.position)
    if row is None or row.leaf() != checkpoint.leaf:
        return f"{checkpoint.label()} is bound to an event that is no longer in the log"
    if row.originator_version != checkpoint.version:
        return f"{checkpoint.label()} names version {checkpoint.version}, not the event's"
    try:
        if _body(checkpoint.state)["format"] != FORMAT:
            return f"{checkpoint.label()} has an older format"
    except (ValueError, KeyError, TypeError, zlib.error, msgpack.UnpackException):
        return f"{checkpoint.label()} cannot be read"
    return None


def restore(cur: Any, checkpoint: Checkpoint) -> None:
    """Write a checkpoint's rows into (empty) tree tables."""
    body = _body(checkpoint.state)
    if body["domain"] is not None:
        cur.execute(f"INSERT INTO view_domains({_DOMAIN_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
                    body["domain"])
    cur.executemany(f"INSERT INTO view_snapshots({_SNAPSHOT_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", body["snapshots"])


def all_checkpoints(db: Any) -> list[Checkpoint]:
    return [Checkpoint(*r) for r in db.execute(
        "SELECT domain_id, position, version, leaf, state, digest FROM view_checkpoints "
        "ORDER BY domain_id, position")]


def bindings(db: Any) -> dict[int, list[tuple[str, bytes]]]:
    """``position -> [(what, leaf)]`` for ``verify`` to check against the log."""
    out: dict[int, list[tuple[str, bytes]]] = {}
    for domain_id, position, leaf in db.execute(
            "SELECT domain_id, position, leaf FROM view_checkpoints"):
        label = f"the checkpoint of domain {domain_id} at position {position}"
        out.setdefault(int(position), []).append((label, bytes(leaf)))
    return out


def _body(state: bytes) -> dict[str, Any]:
    body = msgpack.unpackb(zlib.decompress(state), raw=False)
    if not isinstance(body, dict):
        raise ValueError("not a checkpoint")
    return body
