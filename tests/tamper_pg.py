"""The mutations of ``tests.tamper``, on a PostgreSQL ledger's rows (``xlsnap_events``,
whose position is ``notification_id``). Each returns the first position ``verify`` must
name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.tamper import DELETED, TAKEN

PgMutation = Callable[[Any, int, int], int]
_EVENTS = "xlsnap_events"


def _row(db: Any, position: int) -> tuple:
    return db.execute(f"SELECT originator_id, originator_version, topic, state FROM {_EVENTS} "
                      "WHERE notification_id=%s", (position,)).fetchone()


def flip_state_byte(db: Any, position: int, size: int) -> int:
    state = bytes(_row(db, position)[3])
    i = len(state) // 2
    db.execute(f"UPDATE {_EVENTS} SET state=%s WHERE notification_id=%s",
               (state[:i] + bytes([state[i] ^ 0x01]) + state[i + 1:], position))
    return position


def change_topic(db: Any, position: int, size: int) -> int:
    topic = _row(db, position)[2]
    db.execute(f"UPDATE {_EVENTS} SET topic=%s WHERE notification_id=%s",
               (DELETED if topic != DELETED else TAKEN, position))
    return position


def change_version(db: Any, position: int, size: int) -> int:
    db.execute(f"UPDATE {_EVENTS} SET originator_version=originator_version+100000 "
               "WHERE notification_id=%s", (position,))
    return position


def delete_row(db: Any, position: int, size: int) -> int:
    db.execute(f"DELETE FROM {_EVENTS} WHERE notification_id=%s", (position,))
    return position


def swap_rows(db: Any, position: int, size: int) -> int:
    other = position + 1 if position < size else position - 1
    a, b = _row(db, position), _row(db, other)
    update = (f"UPDATE {_EVENTS} SET originator_id=%s, originator_version=%s, topic=%s, "
              "state=%s WHERE notification_id=%s")
    db.execute(update, ("00000000-0000-0000-0000-000000000000", -1, "", b"", position))
    db.execute(update, (*a, other))
    db.execute(update, (*b, position))
    return min(position, other)


def insert_forged(db: Any, position: int, size: int) -> int:
    for nid in range(size, position - 1, -1):
        db.execute(f"UPDATE {_EVENTS} SET notification_id=notification_id+1 "
                   "WHERE notification_id=%s", (nid,))
    oid, _, _, state = _row(db, position + 1)
    db.execute(f"INSERT INTO {_EVENTS}(notification_id, originator_id, originator_version, "
               "topic, state) VALUES (%s, %s, %s, %s, %s)",
               (position, oid, 900_000 + position, TAKEN, state))
    return position


def truncate_tail(db: Any, position: int, size: int) -> int:
    db.execute(f"DELETE FROM {_EVENTS} WHERE notification_id>=%s", (position,))
    return position


PG_MUTATIONS: dict[str, PgMutation] = {
    "flip a byte in a state": flip_state_byte,
    "change a topic": change_topic,
    "change a version": change_version,
    "delete a row": delete_row,
    "swap two rows": swap_rows,
    "insert a forged row": insert_forged,
    "truncate the tail": truncate_tail,
}
