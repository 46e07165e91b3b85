"""One operation on one domain: intent, side effect, outcome for each step; undo on failure.

A step is recorded as ``StepStarted`` (the intent, with argv) before its side effect
runs and ``StepFinished`` (the result) after. When a step fails, or the process is
interrupted, the steps already done are undone in reverse, each undo recorded the
same way, and the operation is closed as ``compensated``. An undo that fails leaves
the operation in flight for ``xlsnap recover``.
"""

from __future__ import annotations

import signal
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NoReturn

from eventsourcing.persistence import IntegrityError

from commands.drivers.process import DriverError, ProcessResult
from commands.errors import OperationFailed, XlsnapError
from ledger.app import LedgerApp
from ledger.domain import DomainLedger


class CompensationFailed(XlsnapError):
    """Undoing a failed operation failed too: the operation stays in flight."""

    exit_code = 1


@dataclass
class Step:
    """One side effect and, when it can be undone, its undo."""

    action: str
    target: str
    argv: list[str]
    do: Callable[[], ProcessResult]
    undo: Callable[[], ProcessResult] | None = None
    undo_argv: list[str] = field(default_factory=list)
    #: A clean-up whose failure is recorded and reported but fails nothing.
    best_effort: bool = False


@contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM while compensating, so an undo is not cut in half."""
    blocked = {signal.SIGINT, signal.SIGTERM}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


class Operation:
    """Records one operation's steps in a domain's ledger and runs them."""

    def __init__(self, app: LedgerApp, ledger: DomainLedger, actor: dict[str, Any]) -> None:
        self.app = app
        self.ledger = ledger
        self.actor = actor
        self.operation_id = str(uuid.uuid4())
        self.kind = ""
        self._next_step = 1
        self.warnings: list[str] = []

    def start(self, kind: str, snapshot_name: str | None, details: dict[str, Any]) -> None:
        """Record ``OperationStarted``; a racing writer gets ``OperationInFlight``."""
        self.kind = kind
        self.ledger.begin(self.operation_id, kind, snapshot_name, self.actor, details)
        try:
            self.app.save(self.ledger)
        except IntegrityError:
            fresh = self.app.repository.get(self.ledger.id)
            fresh.check_idle()
            raise XlsnapError(
                f"the ledger of domain {self.ledger.domain_name!r} changed while starting; try again"
            ) from None

    def run(
        self, steps: list[Step],
        on_irreversible: Callable[[list[Step]], str] | None = None,
    ) -> list[ProcessResult]:
        """Run ``steps`` in order; on failure undo the done ones and raise ``OperationFailed``.

        Steps without an undo cannot be taken back: if any of them was done when a
        later step fails, ``on_irreversible`` records what that means and returns the
        message; the operation is then closed as ``failed``.
        """
        done: list[Step] = []
        results: list[ProcessResult] = []
        for step in steps:
            number = self._record_start(step.action, step.target, step.argv, "do")
            try:
                result = step.do()
            except (DriverError, OSError, KeyboardInterrupt) as exc:
                failure = _failure_result(step.argv, exc)
                self._record_finish(number, "do", False, failure)
                if step.best_effort and not isinstance(exc, KeyboardInterrupt):
                    self.warnings.append(f"{step.action} on {step.target} failed: "
                                         f"{failure.stderr.strip()}")
                    continue
                self._fail(step, failure, done, on_irreversible)
            self._record_finish(number, "do", True, result)
            done.append(step)
            results.append(result)
        return results

    def complete(self, record_fact: Callable[[DomainLedger], None], message: str = "") -> None:
        """Record the operation's fact and close it, in one transaction."""
        record_fact(self.ledger)
        message = "; ".join([m for m in [message, *self.warnings] if m])
        self.ledger.finish(self.operation_id, "completed", message, self.actor)
        self.app.save(self.ledger)

    # ---- internals -----------------------------------------------------------

    def _record_start(self, action: str, target: str, argv: list[str], phase: str) -> int:
        number = self._next_step
        self._next_step += 1
        self.ledger.step_started(self.operation_id, number, phase, action, target, argv,
                                 self.actor)
        self.app.save(self.ledger)
        return number

    def _record_finish(self, number: int, phase: str, ok: bool, result: ProcessResult) -> None:
        self.ledger.step_finished(self.operation_id, number, phase, ok, result.summary(),
                                  self.actor)
        self.app.save(self.ledger)

    def _fail(
        self, step: Step, failure: ProcessResult, done: list[Step],
        on_irreversible: Callable[[list[Step]], str] | None,
    ) -> NoReturn:
        what = f"{step.action} on {step.target} failed: {failure.stderr.strip() or 'error'}"
        with _signals_deferred():
            undo_failures = self._compensate(done)
            if undo_failures:
                raise CompensationFailed(
                    f"{what}; undoing it failed too ({'; '.join(undo_failures)}); "
                    f"operation {self.operation_id} stays in flight: run "
                    f"'xlsnap recover {self.ledger.domain_name}'"
                )
            irreversible = [s for s in done if s.undo is None]
            if irreversible and on_irreversible is not None:
                message = f"{what}; {on_irreversible(irreversible)}"
                self.ledger.finish(self.operation_id, "failed", message, self.actor)
                self.app.save(self.ledger)
                raise OperationFailed(message)
            message = f"{what}; what was done has been undone, nothing changed"
            self.ledger.finish(self.operation_id, "compensated", message, self.actor)
            self.app.save(self.ledger)
            raise OperationFailed(message)

    def _compensate(self, done: list[Step]) -> list[str]:
        failures: list[str] = []
        for step in reversed(done):
            if step.undo is None:
                continue
            number = self._record_start(step.action, step.target, step.undo_argv, "undo")
            try:
                result = step.undo()
            except (DriverError, OSError) as exc:
                failure = _failure_result(step.undo_argv, exc)
                self._record_finish(number, "undo", False, failure)
                failures.append(f"undo of {step.action} on {step.target}: {failure.stderr.strip()}")
                continue
            self._record_finish(number, "undo", True, result)
        return failures


def _failure_result(argv: list[str], exc: BaseException) -> ProcessResult:
    if isinstance(exc, DriverError):
        return exc.result
    if isinstance(exc, KeyboardInterrupt):
        return ProcessResult(argv, -2, "", "interrupted")
    return ProcessResult(argv, -1, "", str(exc))
