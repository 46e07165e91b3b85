"""The operator's marks, recorded without touching disks: the current snapshot, holds.

Each is an operation of its own (no steps): who did it, when and why are in the ledger
and in ``history``, and a replay shows them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from commands.errors import UsageError
from commands.handlers.operation_flow import carry_out, no_steps
from commands.bootstrap import Services
from ledger.domain import DomainLedger
from ledger.names import check_hold_tag


def _ledger(svc: Services, domain_name: str, name: str) -> DomainLedger:
    ledger = svc.idle_ledger_for(svc.resolve(domain_name).domain)
    ledger.entry(name)
    return ledger


def record_only(svc: Services, ledger: DomainLedger, kind: str, name: str | None,
                details: dict[str, Any], fact: Callable[[DomainLedger, str], None],
                message: str = "") -> None:
    """An operation with no steps: started and closed with ``fact(ledger, operation_id)``
    (``recover`` finishes one a crash left in flight from what ``details`` holds)."""
    carry_out(svc, ledger, kind, name, details, [],
              lambda op: lambda lg: fact(lg, op.operation_id), run=no_steps, message=message)


def mark_current(svc: Services, domain_name: str, name: str) -> None:
    """Make ``name`` the current snapshot (the next one's parent); no disk changes."""
    ledger = _ledger(svc, domain_name, name)
    record_only(svc, ledger, "mark-current", name,
                {"domain": domain_name, "previous": ledger.current},
                lambda lg, op: lg.record_marked_current(op, name, svc.actor))


def hold(svc: Services, domain_name: str, name: str, tag: str) -> None:
    """Place hold ``tag`` on snapshot ``name``: it cannot be deleted while held."""
    check_hold_tag(tag)
    ledger = _ledger(svc, domain_name, name)
    if tag in ledger.holds(name):
        raise UsageError(f"snapshot {name!r} already has a hold {tag!r}")
    record_only(svc, ledger, "hold", name, {"domain": domain_name, "tag": tag},
                lambda lg, op: lg.record_held(op, name, tag, svc.actor))


def release(svc: Services, domain_name: str, name: str, tag: str) -> None:
    """Release hold ``tag`` of snapshot ``name``."""
    check_hold_tag(tag)
    ledger = _ledger(svc, domain_name, name)
    if tag not in ledger.holds(name):
        held = ", ".join(ledger.holds(name)) or "none"
        raise UsageError(f"snapshot {name!r} has no hold {tag!r} (its holds: {held})")
    record_only(svc, ledger, "release", name, {"domain": domain_name, "tag": tag},
                lambda lg, op: lg.record_released(op, name, tag, svc.actor))
