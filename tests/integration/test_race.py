"""Two writers starting an operation on one domain: one wins, the other is told who."""

from __future__ import annotations

import pytest

from commands.domains import load_domain
from commands.operation import Operation
from ledger.errors import OperationInFlight
from tests.conftest import Scratch


def test_racing_starts_give_one_winner_and_a_clear_refusal(scratch: Scratch) -> None:
    first, second = scratch.services(), scratch.services()
    second.actor = {**second.actor, "user": "mallory", "host": "other-host"}
    try:
        domain = load_domain(scratch.config_dir, "web")
        ledger_1, ledger_2 = first.ledger_for(domain), second.ledger_for(domain)
        Operation(first.app, ledger_1, first.actor, first.tools).start("create", "a", {}, [])
        with pytest.raises(OperationInFlight) as refused:
            Operation(second.app, ledger_2, second.actor, second.tools).start("create", "b", {}, [])
        assert "create 'a'" in str(refused.value)
        assert first.actor["user"] in str(refused.value)
        events = list(first.app.iter_log())
        assert [type(e).__name__ for _, e in events] == ["Registered", "OperationStarted"]
    finally:
        first.close()
        second.close()
