"""The course every operation takes: the domain found idle, start, run, record, sync."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from commands.bootstrap import Services
from commands.engine.actions import StepSpec
from commands.engine.operation import Operation
from commands.toolstacks.base import Target
from ledger.domain import DomainLedger

#: How a plan is run: ``op.run(plan)``, or that wrapped (undo, resume, sync on failure).
Runner = Callable[[Operation, list[StepSpec]], None]
#: Called once after the plan ran; returns the fact ``op.complete`` records.
Outcome = Callable[[Operation], Callable[[DomainLedger], None]]


def idle_domain(svc: Services, name: str) -> tuple[Target, DomainLedger]:
    """The domain ``name`` and its ledger, refused while an operation is in flight."""
    target = svc.resolve(name)
    ledger = svc.idle_ledger_for(target.domain)
    return target, ledger


def run_plan(op: Operation, plan: list[StepSpec]) -> None:
    op.run(plan)


def run_then_sync(svc: Services) -> Runner:
    """``op.run(plan)``, the read model synced whether or not it failed."""
    def run(op: Operation, plan: list[StepSpec]) -> None:
        try:
            op.run(plan)
        finally:
            svc.sync()
    return run


def no_steps(op: Operation, plan: list[StepSpec]) -> None:
    """The runner of an operation that only records (marks, holds)."""


def carry_out(svc: Services, ledger: DomainLedger, kind: str, name: str | None,
              details: dict[str, Any], plan: list[StepSpec], outcome: Outcome, *,
              run: Runner = run_plan, operation_id: str | None = None, message: str = "",
              then: Callable[[Operation], None] | None = None) -> Operation:
    """Record the start with the plan, run it, record ``outcome``'s fact, then sync.

    ``then`` runs after the fact is recorded and before the read model is synced.
    """
    op = Operation(svc.app, ledger, svc.actor, svc.tools, operation_id)
    op.start(kind, name, details, plan)
    run(op, plan)
    op.complete(outcome(op), message=message)
    if then is not None:
        then(op)
    svc.sync()
    return op
