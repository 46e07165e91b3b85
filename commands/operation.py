"""One operation on one domain: intent, side effect, outcome for each step; undo on failure.

The whole plan is recorded in ``OperationStarted``. Each step is recorded as
``StepStarted`` (the intent, with argv) before its side effect runs and
``StepFinished`` (the result) after. When a step fails, or the process is
interrupted, the steps already done are undone in reverse, each undo recorded the
same way, and the operation is closed as ``compensated``. An undo that fails leaves
the operation in flight for ``xlsnap recover``.
"""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

from eventsourcing.persistence import IntegrityError

from commands.actions import StepSpec, Tools, action_of
from commands.drivers.process import DriverError, ProcessResult
from commands.errors import OperationFailed, XlsnapError
from commands.faults import inject
from ledger.app import LedgerApp
from ledger.domain import DomainLedger


#: How often a start is tried when other operations keep finishing meanwhile.
START_TRIES = 5

#: Seconds between two tries of a side effect during recovery.
RETRY_PAUSE = 1.0


class CompensationFailed(XlsnapError):
    """Undoing a failed operation failed too: the operation stays in flight."""

    exit_code = 1


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM while compensating, so an undo is not cut in half."""
    blocked = {signal.SIGINT, signal.SIGTERM}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


class Operation:
    """Records one operation's steps in a domain's ledger and runs them."""

    def __init__(self, app: LedgerApp, ledger: DomainLedger, actor: dict[str, Any],
                 tools: Tools, operation_id: str | None = None) -> None:
        self.app = app
        self.ledger = ledger
        self.actor = actor
        self.tools = tools
        self.operation_id = operation_id or str(uuid.uuid4())
        self.warnings: list[str] = []

    def start(self, kind: str, snapshot_name: str | None, details: dict[str, Any],
              plan: list[StepSpec]) -> None:
        """Record ``OperationStarted`` with the plan; a racing writer gets ``OperationInFlight``.

        If another operation started and finished since the ledger was read, the
        start is retried on the fresh ledger after checking the name again there.
        """
        details = {**details, "plan": [s.as_dict() for s in plan]}
        for _ in range(START_TRIES):
            self.ledger.begin(self.operation_id, kind, snapshot_name, self.actor, details)
            try:
                self.app.save(self.ledger)
                return
            except IntegrityError:
                fresh: DomainLedger = self.app.repository.get(self.ledger.id)
                fresh.check_idle()
                if snapshot_name is not None:
                    if kind in ("create", "adopt"):
                        fresh.check_new_name(snapshot_name)
                    else:
                        fresh.entry(snapshot_name)
                self.ledger = fresh
        raise XlsnapError(f"the ledger of domain {self.ledger.domain_name!r} kept changing "
                          "while starting; try again")

    def run(
        self, plan: list[StepSpec],
        on_irreversible: Callable[[list[StepSpec]], str] | None = None,
    ) -> None:
        """Run the plan in order; on failure undo the done steps and raise ``OperationFailed``.

        Irreversible steps cannot be taken back: if any of them was done when a later
        step fails, ``on_irreversible`` records what that means and returns the
        message; the operation is then closed as ``failed``.
        """
        done: list[tuple[int, StepSpec]] = []
        for number, spec in enumerate(plan, start=1):
            action = action_of(spec)
            argv = action.argv(spec.params, self.tools)
            ok, result = self.attempt(number, "do", spec, argv,
                                      lambda: action.do(spec.params, self.tools))
            if ok:
                done.append((number, spec))
            elif action.best_effort and result.returncode != -2:
                self.warnings.append(f"{spec.action} on {spec.target} failed: "
                                     f"{result.error_line()}")
            else:
                try:
                    self._fail(spec, result, done, on_irreversible)
                except XlsnapError as exc:
                    exc.detail = result.stderr.strip()    # the tool's whole say: --verbose
                    raise

    def attempt(self, number: int, phase: str, spec: StepSpec, argv: list[str],
                effect: Callable[[], ProcessResult]) -> tuple[bool, ProcessResult]:
        """Record the intent, run ``effect``, record the outcome; never raises for its failure."""
        self.ledger.step_started(self.operation_id, number, phase, spec.action, spec.target,
                                 argv, self.actor)
        self.app.save(self.ledger)
        try:
            inject(number, phase, "intent")
            result = effect()
            inject(number, phase, "effect")
        except (DriverError, OSError, KeyboardInterrupt) as exc:
            result = _failure_result(argv, exc)
        ok = result.returncode == 0
        self.ledger.step_finished(self.operation_id, number, phase, ok, result.summary(),
                                  self.actor)
        self.app.save(self.ledger)
        inject(number, phase, "outcome")
        return ok, result

    def attempt_with_retries(self, number: int, phase: str, spec: StepSpec, argv: list[str],
                             effect: Callable[[], ProcessResult],
                             tries: int) -> tuple[bool, ProcessResult]:
        """``attempt`` up to ``tries`` times, a second apart (effects are idempotent)."""
        for left in range(tries - 1, -1, -1):
            ok, result = self.attempt(number, phase, spec, argv, effect)
            if ok or left == 0 or result.returncode == -2:
                return ok, result
            time.sleep(RETRY_PAUSE)
        raise AssertionError("unreachable")

    def complete(self, record_fact: Callable[[DomainLedger], None], outcome: str = "completed",
                 message: str = "") -> None:
        """Record the operation's fact and close it, in one transaction."""
        record_fact(self.ledger)
        message = "; ".join([m for m in [message, *self.warnings] if m])
        self.ledger.finish(self.operation_id, outcome, message, self.actor)
        self.app.save(self.ledger)

    def undo_steps(self, steps: list[tuple[int, StepSpec]], tries: int = 1) -> list[str]:
        """Undo reversible ``steps`` in reverse, each try recorded; returns what failed."""
        failures: list[str] = []
        for number, spec in reversed(steps):
            action = action_of(spec)
            if not action.reversible:
                continue
            ok, result = self.attempt_with_retries(
                number, "undo", spec, action.undo_argv(spec.params, self.tools),
                lambda a=action, s=spec: a.undo(s.params, self.tools), tries)
            if not ok:
                failures.append(f"undo of {spec.action} on {spec.target}: "
                                f"{result.error_line()}")
        return failures

    # ---- internals -----------------------------------------------------------

    def _fail(
        self, spec: StepSpec, failure: ProcessResult, done: list[tuple[int, StepSpec]],
        on_irreversible: Callable[[list[StepSpec]], str] | None,
    ) -> NoReturn:
        what = f"{spec.action} on {spec.target} failed: {failure.error_line() or 'error'}"
        with signals_deferred():
            undo_failures = self.undo_steps(done)
            if undo_failures:
                raise CompensationFailed(
                    f"{what}; undoing it failed too ({'; '.join(undo_failures)}); "
                    f"operation {self.operation_id} stays in flight: run "
                    f"'xlsnap recover {self.ledger.domain_name}'"
                )
            irreversible = [s for _, s in done if not action_of(s).reversible]
            if irreversible and on_irreversible is not None:
                message = f"{what}; {on_irreversible(irreversible)}"
                self.ledger.finish(self.operation_id, "failed", message, self.actor)
                self.app.save(self.ledger)
                raise OperationFailed(message)
            message = f"{what}; what was done has been undone, nothing changed"
            self.ledger.finish(self.operation_id, "compensated", message, self.actor)
            self.app.save(self.ledger)
            raise OperationFailed(message)


def _failure_result(argv: list[str], exc: BaseException) -> ProcessResult:
    if isinstance(exc, DriverError):
        return exc.result
    if isinstance(exc, KeyboardInterrupt):
        return ProcessResult(argv, -2, "", "interrupted")
    return ProcessResult(argv, -1, "", str(exc))
