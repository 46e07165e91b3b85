"""Merkle entries cover every stored field of an event, unambiguously."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.entries import MalformedRow, entry_bytes, parse_entry

ROW = ("7a7c962489d55111800d0ac560eb4aac", 9, "ledger.domain:DomainLedger.SnapshotTaken",
       b"\x85\xa4name\xa2s1")


def test_an_entry_is_the_length_prefixed_fields() -> None:
    oid, version, topic, state = ROW
    assert entry_bytes(*ROW) == (b"\x01" + len(oid).to_bytes(2, "big") + oid.encode()
                                 + version.to_bytes(8, "big") + len(topic).to_bytes(2, "big")
                                 + topic.encode() + len(state).to_bytes(4, "big") + state)


@given(st.text(max_size=40), st.integers(0, 2**64 - 1), st.text(max_size=40),
       st.binary(max_size=60))
def test_entries_parse_back_to_their_fields(oid: str, version: int, topic: str,
                                            state: bytes) -> None:
    assert parse_entry(entry_bytes(oid, version, topic, state)) == (oid, version, topic, state)


def test_moving_bytes_between_fields_changes_the_entry() -> None:
    oid, version, topic, state = ROW
    assert entry_bytes(oid, version, topic + "x", state) != entry_bytes(oid, version, topic,
                                                                         b"x" + state)
    assert entry_bytes(oid + "1", version, topic, state) != entry_bytes(oid, version,
                                                                         "1" + topic, state)


@pytest.mark.parametrize("row", [
    (b"id", 1, "t", b"s"), ("id", "1", "t", b"s"), ("id", 1, "t", "s"), ("id", True, "t", b"s"),
    ("id", -1, "t", b"s"),
])
def test_rows_of_the_wrong_types_are_malformed(row: tuple) -> None:
    with pytest.raises(MalformedRow):
        entry_bytes(*row)


def test_truncated_or_padded_entries_do_not_parse() -> None:
    entry = entry_bytes(*ROW)
    for bad in (entry[:-1], entry + b"\x00", b"\x02" + entry[1:], b""):
        with pytest.raises(MalformedRow):
            parse_entry(bad)
