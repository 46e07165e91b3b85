"""The msgpack transcoder keeps every value type the events carry."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from uuid import uuid4

import pytest
from eventsourcing.persistence import TranscodingNotRegisteredError

from ledger.transcoder import MsgpackTranscoder


def test_round_trips_event_state() -> None:
    t = MsgpackTranscoder()
    state = {"id": uuid4(), "at": datetime(2026, 11, 28, 9, 30, tzinfo=timezone.utc),
             "size": Decimal("1.50"), "argv": ["qemu-img", "snapshot"], "ok": True,
             "nested": {"n": None, "b": b"\x00\x01"}, 1: "int key"}
    assert t.decode(t.encode(state)) == state


def test_tuples_come_back_as_lists() -> None:
    t = MsgpackTranscoder()
    assert t.decode(t.encode((1, 2))) == [1, 2]


def test_unknown_types_are_refused() -> None:
    with pytest.raises(TranscodingNotRegisteredError):
        MsgpackTranscoder().encode(object())
