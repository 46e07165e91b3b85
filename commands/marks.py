"""The operator's marks, recorded without touching disks: the current snapshot, holds.

Each is an operation of its own (no steps): who did it, when and why are in the ledger
and in ``history``, and a replay shows them.
"""

from __future__ import annotations

from commands.errors import UsageError
from commands.operation import Operation
from commands.services import Services
from ledger.domain import DomainLedger
from ledger.names import check_hold_tag


def _ledger(svc: Services, domain_name: str, name: str) -> DomainLedger:
    ledger = svc.ledger_for(svc.resolve(domain_name).domain)
    ledger.check_idle()
    ledger.entry(name)
    return ledger


def mark_current(svc: Services, domain_name: str, name: str) -> None:
    """Make ``name`` the current snapshot (the next one's parent); no disk changes."""
    ledger = _ledger(svc, domain_name, name)
    op = Operation(svc.app, ledger, svc.actor, svc.tools)
    op.start("mark-current", name, {"domain": domain_name, "previous": ledger.current}, [])
    op.complete(lambda lg: lg.record_marked_current(op.operation_id, name, svc.actor))
    svc.sync()


def hold(svc: Services, domain_name: str, name: str, tag: str) -> None:
    """Place hold ``tag`` on snapshot ``name``: it cannot be deleted while held."""
    check_hold_tag(tag)
    ledger = _ledger(svc, domain_name, name)
    if tag in ledger.holds(name):
        raise UsageError(f"snapshot {name!r} already has a hold {tag!r}")
    op = Operation(svc.app, ledger, svc.actor, svc.tools)
    op.start("hold", name, {"domain": domain_name, "tag": tag}, [])
    op.complete(lambda lg: lg.record_held(op.operation_id, name, tag, svc.actor))
    svc.sync()


def release(svc: Services, domain_name: str, name: str, tag: str) -> None:
    """Release hold ``tag`` of snapshot ``name``."""
    check_hold_tag(tag)
    ledger = _ledger(svc, domain_name, name)
    if tag not in ledger.holds(name):
        held = ", ".join(ledger.holds(name)) or "none"
        raise UsageError(f"snapshot {name!r} has no hold {tag!r} (its holds: {held})")
    op = Operation(svc.app, ledger, svc.actor, svc.tools)
    op.start("release", name, {"domain": domain_name, "tag": tag}, [])
    op.complete(lambda lg: lg.record_released(op.operation_id, name, tag, svc.actor))
    svc.sync()
