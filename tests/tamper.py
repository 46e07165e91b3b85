"""What an attacker with write access to the ledger file might do to it.

Each mutation changes the log of a ledger copy and returns the first position that
``xlsnap verify`` must name.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from ledger.signing import create_key_file, public_bytes, public_pem, sign
from ledger.tree_heads import HEADS_TABLE, signed_data

Mutation = Callable[[sqlite3.Connection, int, int], int]
TAKEN = "ledger.domain:DomainLedger.SnapshotTaken"
DELETED = "ledger.domain:DomainLedger.SnapshotDeleted"


def _row(db: sqlite3.Connection, position: int) -> tuple:
    return db.execute("SELECT originator_id, originator_version, topic, state FROM "
                      "stored_events WHERE rowid=?", (position,)).fetchone()


def flip_state_byte(db: sqlite3.Connection, position: int, size: int) -> int:
    state = _row(db, position)[3]
    i = len(state) // 2
    db.execute("UPDATE stored_events SET state=? WHERE rowid=?",
               (state[:i] + bytes([state[i] ^ 0x01]) + state[i + 1:], position))
    return position


def change_topic(db: sqlite3.Connection, position: int, size: int) -> int:
    topic = _row(db, position)[2]
    db.execute("UPDATE stored_events SET topic=? WHERE rowid=?",
               (DELETED if topic != DELETED else TAKEN, position))
    return position


def change_version(db: sqlite3.Connection, position: int, size: int) -> int:
    db.execute("UPDATE stored_events SET originator_version=originator_version+100000 "
               "WHERE rowid=?", (position,))
    return position


def delete_row(db: sqlite3.Connection, position: int, size: int) -> int:
    db.execute("DELETE FROM stored_events WHERE rowid=?", (position,))
    return position


def swap_rows(db: sqlite3.Connection, position: int, size: int) -> int:
    """Swap the event at ``position`` with the next one (or the previous, at the end)."""
    other = position + 1 if position < size else position - 1
    a, b = _row(db, position), _row(db, other)
    update = ("UPDATE stored_events SET originator_id=?, originator_version=?, topic=?, "
              "state=? WHERE rowid=?")
    db.execute(update, ("swap", -1, "", b"", position))
    db.execute(update, (*a, other))
    db.execute(update, (*b, position))
    return min(position, other)


def insert_forged(db: sqlite3.Connection, position: int, size: int) -> int:
    """Renumber the events from ``position`` on and put a forged one in its place."""
    for rowid in range(size, position - 1, -1):
        db.execute("UPDATE stored_events SET rowid=rowid+1 WHERE rowid=?", (rowid,))
    oid, _, _, state = _row(db, position + 1)
    db.execute("INSERT INTO stored_events(rowid, originator_id, originator_version, topic, "
               "state) VALUES (?, ?, ?, ?, ?)", (position, oid, 900_000 + position, TAKEN,
                                                 state))
    return position


def truncate_tail(db: sqlite3.Connection, position: int, size: int) -> int:
    db.execute("DELETE FROM stored_events WHERE rowid>=?", (position,))
    return position


ROW_MUTATIONS: dict[str, Mutation] = {
    "flip a byte in a state": flip_state_byte,
    "change a topic": change_topic,
    "change a version": change_version,
    "delete a row": delete_row,
    "swap two rows": swap_rows,
    "insert a forged row": insert_forged,
    "truncate the tail": truncate_tail,
}


def replace_signing_key(db: sqlite3.Connection, key_path: Path) -> None:
    """A new key in place of the old one, every recorded head re-signed with it."""
    key_path.unlink()
    key_path.with_suffix(".pub").unlink(missing_ok=True)
    key = create_key_file(key_path)
    key_path.with_suffix(".pub").write_bytes(public_pem(public_bytes(key)))
    for seq, size, root, ts in db.execute(
            f"SELECT seq, tree_size, root_hash, timestamp_ms FROM {HEADS_TABLE}").fetchall():
        db.execute(f"UPDATE {HEADS_TABLE} SET public_key=?, signature=? WHERE seq=?",
                   (public_bytes(key), sign(key, signed_data(size, root, ts)), seq))


def copy_ledger(source: Path, target: Path) -> None:
    """A consistent copy of a ledger file (its WAL included)."""
    src = sqlite3.connect(source)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def mutate(path: Path, mutation: Mutation, position: int, size: int) -> int:
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("BEGIN")
        expected = mutation(db, position, size)
        db.execute("COMMIT")
        return expected
    finally:
        db.close()
