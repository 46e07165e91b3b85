"""A domain whose operation ends between the ledger's read and the check of its owner's
process is idle, not "in flight, its process gone" (8 processes on one domain met it)."""

from __future__ import annotations

import subprocess
import uuid

import pytest

from commands.bootstrap import Services
from ledger.domain import DomainLedger
from ledger.errors import OperationInFlight
from ledger.owner import current_owner
from tests.conftest import Scratch


def _dead_owner() -> dict[str, object]:
    child = subprocess.Popen(["true"])
    child.wait()
    return {**current_owner(), "pid": child.pid, "start": None}


class ReadBeforeTheEnd(Services):
    """Services whose first read of a ledger is the one taken just before its operation
    ended (what a process sees when the owner finishes right after the read)."""

    stale: DomainLedger | None = None

    def ledger_for(self, domain):  # type: ignore[no-untyped-def]
        if self.stale is not None:
            stale, self.stale = self.stale, None
            return stale
        return super().ledger_for(domain)


def test_an_operation_that_ended_after_the_read_is_no_refusal(scratch: Scratch) -> None:
    svc = ReadBeforeTheEnd(scratch.settings())
    try:
        domain = svc.resolve(scratch.name).domain
        ledger = svc.ledger_for(domain)
        op_id = str(uuid.uuid4())
        ledger.begin(op_id, "create", "s1", svc.actor, {}, _dead_owner())
        svc.app.save(ledger)
        stale = svc.ledger_for(domain)                     # read while it was in flight
        with pytest.raises(OperationInFlight, match="its process is gone"):
            stale.check_idle()                             # what a single check says
        ended = svc.ledger_for(domain)
        ended.finish(op_id, "failed", "ended by its owner", svc.actor)
        svc.app.save(ended)                                # the owner ends it, then exits
        svc.stale = stale
        assert svc.idle_ledger_for(domain).in_flight is None
    finally:
        svc.close()


def test_an_operation_still_in_flight_is_still_refused(scratch: Scratch) -> None:
    svc = scratch.services()
    try:
        domain = svc.resolve(scratch.name).domain
        ledger = svc.ledger_for(domain)
        ledger.begin(str(uuid.uuid4()), "create", "s1", svc.actor, {}, _dead_owner())
        svc.app.save(ledger)
        with pytest.raises(OperationInFlight, match="its process is gone: run 'xlsnap recover"):
            svc.idle_ledger_for(domain)
    finally:
        svc.close()
