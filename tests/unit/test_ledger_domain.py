"""The DomainLedger aggregate's invariants and tree semantics (no I/O)."""

from __future__ import annotations

import pytest

from ledger.domain import DomainLedger, domain_ledger_id
from ledger.errors import InvalidRequest, OperationInFlight

ACTOR = {"uid": 0, "user": "root", "sudo_user": None, "host": "h", "pid": 1, "argv": [],
         "version": "dev"}


def new_ledger() -> DomainLedger:
    return DomainLedger(domain_key="u", domain_name="web", domain_uuid="u", actor=ACTOR)


def take(ledger: DomainLedger, name: str, op: str | None = None) -> None:
    op = op or f"op-{name}"
    ledger.begin(op, "create", name, ACTOR, {})
    ledger.record_taken(op, name, {"type": "internal"}, ACTOR)
    ledger.finish(op, "completed", "", ACTOR)


def test_id_is_derived_from_the_domain_key() -> None:
    assert new_ledger().id == domain_ledger_id("u") != domain_ledger_id("v")


def test_new_snapshot_is_child_of_current_and_becomes_current() -> None:
    ledger = new_ledger()
    take(ledger, "a")
    take(ledger, "b")
    assert ledger.entries["b"]["parent"] == "a" and ledger.current == "b"


def test_names_are_unique() -> None:
    ledger = new_ledger()
    take(ledger, "a")
    with pytest.raises(InvalidRequest, match="already has a snapshot named 'a'"):
        take(ledger, "a", op="op-2")


def test_second_operation_is_refused_while_one_is_in_flight() -> None:
    ledger = new_ledger()
    ledger.begin("op1", "create", "a", ACTOR, {})
    with pytest.raises(OperationInFlight, match="op1") as info:
        ledger.begin("op2", "create", "b", ACTOR, {})
    assert info.value.operation["actor"]["host"] == "h"


def test_delete_reparents_children_and_moves_current_to_parent() -> None:
    ledger = new_ledger()
    for name in ("a", "b", "c"):
        take(ledger, name)
    ledger.begin("d", "delete", "b", ACTOR, {})
    ledger.record_removed("d", "b", ACTOR)
    ledger.finish("d", "completed", "", ACTOR)
    assert ledger.entries["c"]["parent"] == "a"
    ledger.begin("d2", "delete", "c", ACTOR, {})
    ledger.record_removed("d2", "c", ACTOR)
    ledger.finish("d2", "completed", "", ACTOR)
    assert ledger.current == "a"


def test_revert_moves_current_and_unknown_names_are_refused() -> None:
    ledger = new_ledger()
    take(ledger, "a")
    take(ledger, "b")
    ledger.begin("r", "revert", "a", ACTOR, {})
    ledger.record_reverted("r", "a", ACTOR)
    assert ledger.current == "a"
    with pytest.raises(InvalidRequest, match="no snapshot named 'zz'"):
        ledger.record_reverted("r", "zz", ACTOR)


def test_facts_need_the_operation_in_flight() -> None:
    ledger = new_ledger()
    with pytest.raises(InvalidRequest, match="not in flight"):
        ledger.record_taken("nope", "a", {}, ACTOR)
