"""One operation on one domain: intent, side effect, outcome for each step; undo on failure."""

from __future__ import annotations

import contextlib
import signal
import sqlite3
import time
import uuid
from collections.abc import Callable
from typing import Any, NoReturn

from eventsourcing.persistence import IntegrityError, PersistenceError

from commands.engine.actions import StepSpec, Tools
from commands.engine.step_registry import action_of
from commands.drivers.process import DriverError, ProcessResult
from commands.errors import LedgerBlocked, LedgerWriteFailed, OperationFailed, XlsnapError
from commands.engine.fault_injection import inject
from commands.engine.operation_errors import (
    CompensationFailed,
    LedgerChanged,
    PartlyDone,
    Unrecorded,
    write_failure_reason,
)
from commands.engine.signal_hold import HELD, signals_allowed, signals_deferred, take_interrupt
from ledger.app import LedgerApp
from ledger.domain import DomainLedger
from ledger.owner import current_owner


#: How often a start is tried when other operations keep finishing meanwhile.
START_TRIES = 5

#: Seconds between two tries of a side effect during recovery.
RETRY_PAUSE = 1.0


class Operation:
    """Records one operation's steps in a domain's ledger and runs them.

    The whole plan is recorded in ``OperationStarted``. Each step is recorded as
    ``StepStarted`` (the intent, with argv) before its side effect runs and
    ``StepFinished`` (the result) after. When a step fails, or the process is
    interrupted, the steps already done are undone in reverse, each undo recorded the
    same way, and the operation is closed as ``compensated``. An undo that fails leaves
    the operation in flight for ``xlsnap recover``.

    A ledger write that fails (disk full, a lock held too long) is a failed step that
    cannot be recorded: what was done is undone without writing, unless every step
    was done and recorded (then ``recover`` rolls forward), and the operation stays in
    flight for ``recover`` (``LedgerWriteFailed``, exit 3). A ledger changed by another
    process under the operation (a forced ``recover``) stops it (``LedgerChanged``).
    """

    def __init__(self, app: LedgerApp, ledger: DomainLedger, actor: dict[str, Any],
                 tools: Tools, operation_id: str | None = None) -> None:
        self.app = app
        self.ledger = ledger
        self.actor = actor
        self.tools = tools
        self.operation_id = operation_id or str(uuid.uuid4())
        self.warnings: list[str] = []
        #: Why the ledger stopped taking writes (then nothing more is recorded), or None.
        self.unrecorded: str | None = None
        self._interruptible = False
        self._mask: set[signal.Signals] | None = None  # the signal mask before ``_hold``

    def start(self, kind: str, snapshot_name: str | None, details: dict[str, Any],
              plan: list[StepSpec]) -> None:
        """Record ``OperationStarted`` with the plan; a racing writer gets ``OperationInFlight``.

        If another operation started and finished since the ledger was read, the
        start is retried on the fresh ledger after checking the name again there.
        """
        details = {**details, "plan": [s.as_dict() for s in plan]}
        self._hold()
        try:
            self._start(kind, snapshot_name, details)
        except BaseException:
            self._release()
            raise

    def _start(self, kind: str, snapshot_name: str | None, details: dict[str, Any]) -> None:
        for _ in range(START_TRIES):
            self.ledger.begin(self.operation_id, kind, snapshot_name, self.actor, details,
                              current_owner())
            try:
                self.app.save(self.ledger)
                return
            except IntegrityError:
                fresh: DomainLedger = self.app.load(self.ledger.id)
                fresh.check_idle()
                if snapshot_name is not None:
                    if kind in ("create", "adopt"):
                        fresh.check_new_name(snapshot_name)
                    else:
                        fresh.entry(snapshot_name)
                self.ledger = fresh
            except (PersistenceError, sqlite3.Error, OSError) as exc:
                raise LedgerWriteFailed(f"{write_failure_reason(exc)}: could not start {kind} "
                                        f"{snapshot_name!r}; nothing changed") from None
        raise LedgerBlocked(f"the ledger of domain {self.ledger.domain_name!r} kept changing "
                          "while starting; try again")

    def run(
        self, plan: list[StepSpec],
        on_irreversible: Callable[[list[StepSpec]], str] | None = None,
    ) -> None:
        """Run the plan in order; on failure undo the done steps and raise ``OperationFailed``.

        Irreversible steps cannot be taken back: if any of them was done when a later
        step fails, ``on_irreversible`` records what that means and returns the
        message; the operation is then closed as ``failed``.

        SIGINT/SIGTERM are held from ``start`` until the operation is closed (by
        ``complete`` or a failure), and let through only while a side effect runs: an
        interrupt fails the plan at the step it came in, never between a side effect
        and its record, nor after the last step (a finished plan completes).
        """
        done: list[tuple[int, StepSpec]] = []
        self._hold()
        try:
            self._run(plan, on_irreversible, done)
        except BaseException:
            self._release()
            raise

    def _run(self, plan: list[StepSpec], on_irreversible: Callable[[list[StepSpec]], str] | None,
             done: list[tuple[int, StepSpec]]) -> None:
        """``run``'s loop, signals held: only a side effect may be interrupted (see
        ``attempt``); an interrupt between steps is taken there and fails the plan."""
        for number, spec in enumerate(plan, start=1):
            action = action_of(spec)
            argv = action.argv(spec.params, self.tools)
            if take_interrupt():
                self._fail(spec, ProcessResult(argv, -2, "", "interrupted"), done,
                           on_irreversible, before=True)
            self._interruptible = True
            try:
                ok, result = self.attempt(number, "do", spec, argv,
                                          lambda: action.do(spec.params, self.tools))
            except Unrecorded as exc:
                if exc.ran:
                    done.append((number, spec))
                self._abandon(spec, done)
            finally:
                self._interruptible = False
            interrupted = result.returncode == -2
            if ok or (interrupted and action.reversible):
                done.append((number, spec))  # an interrupted step may have happened
            if not ok and action.best_effort and not interrupted:
                self.warnings.append(f"{spec.action} on {spec.target} failed: "
                                     f"{result.error_line()}")
            if ok or (action.best_effort and not interrupted):
                if not take_interrupt():
                    continue
                result = ProcessResult(argv, -2, "", "interrupted")
            try:
                self._fail(spec, result, done, on_irreversible)
            except XlsnapError as exc:
                exc.detail = result.stderr.strip()    # the tool's whole say: --verbose
                raise

    def attempt(self, number: int, phase: str, spec: StepSpec, argv: list[str],
                effect: Callable[[], ProcessResult]) -> tuple[bool, ProcessResult]:
        """Record the intent, run ``effect``, record the outcome; never raises for its failure.

        A ledger write that fails raises ``Unrecorded`` (after the effect, with ``ran``
        saying whether it succeeded); once one has failed, nothing is recorded. An
        interrupted effect gives a result with returncode -2.
        """
        self._record(lambda: self.ledger.step_started(
            self.operation_id, number, phase, spec.action, spec.target, argv, self.actor))
        try:
            # In ``run`` only the side effect itself may be interrupted; a QMP command
            # holds signals until QEMU has answered (``QmpChannel.run``).
            with signals_allowed() if self._interruptible else contextlib.nullcontext():
                inject(number, phase, "intent")
                result = effect()
                inject(number, phase, "effect")
        except (DriverError, OSError, KeyboardInterrupt) as exc:
            result = _failure_result(argv, exc)
        ok = result.returncode == 0
        try:
            self._record(lambda: self.ledger.step_finished(
                self.operation_id, number, phase, ok, result.summary(), self.actor))
        except Unrecorded as exc:
            raise Unrecorded(exc.reason, exc.domain, ok, result) from None
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
        message = "; ".join([m for m in [message, *self.warnings] if m])

        def both() -> None:
            record_fact(self.ledger)
            self.ledger.finish(self.operation_id, outcome, message, self.actor)

        try:
            self._record(both)
        except Unrecorded as exc:
            in_flight = self.ledger.in_flight or {}
            raise LedgerWriteFailed(
                f"{exc.reason}: every step of {in_flight.get('kind', 'the operation')} "
                f"{in_flight.get('snapshot_name')!r} was done, but the ledger could not "
                f"record its end; operation {self.operation_id} stays in flight: "
                f"'xlsnap recover {self.ledger.domain_name}' will finish it") from None
        finally:
            self._release()  # an interrupt held till now comes too late: the plan was done

    def undo_steps(self, steps: list[tuple[int, StepSpec]], tries: int = 1) -> list[str]:
        """Undo reversible ``steps`` in reverse, each try recorded; returns what failed."""
        failures: list[str] = []
        for number, spec in reversed(steps):
            action = action_of(spec)
            if not action.reversible:
                continue
            undo = (number, "undo", spec, action.undo_argv(spec.params, self.tools),
                    lambda a=action, s=spec: a.undo(s.params, self.tools), tries)
            try:
                ok, result = self.attempt_with_retries(*undo)
            except Unrecorded as exc:  # from now on nothing is recorded
                if exc.ran is None or exc.result is None:
                    ok, result = self.attempt_with_retries(*undo)
                else:
                    ok, result = exc.ran, exc.result
            if not ok:
                failures.append(f"undo of {spec.action} on {spec.target}: "
                                f"{result.error_line()}")
        return failures

    def undo_or_stay(self, what: str, done: list[tuple[int, StepSpec]]) -> None:
        """Undo ``done`` after ``what`` failed; if an undo fails, raise
        ``CompensationFailed``: the operation stays in flight for ``recover``."""
        undo_failures = self.undo_steps(done)
        if undo_failures:
            raise CompensationFailed(
                f"{what}; undoing it failed too ({'; '.join(undo_failures)}); "
                f"operation {self.operation_id} stays in flight: run "
                f"'xlsnap recover {self.ledger.domain_name}'"
            )

    def record(self, change: Callable[[], None]) -> None:
        """Record a fact within the operation (``change`` edits the ledger); a write the
        ledger refuses raises ``Unrecorded``."""
        self._record(change)

    # ---- internals -----------------------------------------------------------

    def _hold(self) -> None:
        """Hold SIGINT/SIGTERM until ``_release`` (once; ``start`` and ``run`` both ask)."""
        if self._mask is None:
            self._mask = signal.pthread_sigmask(signal.SIG_BLOCK, HELD)

    def _release(self) -> None:
        """Take an interrupt held meanwhile (the operation is closed or failing: it has
        been answered) and let signals through again."""
        if self._mask is not None:
            take_interrupt()
            signal.pthread_sigmask(signal.SIG_SETMASK, self._mask)
            self._mask = None

    def _record(self, change: Callable[[], None]) -> None:
        """Apply ``change`` to the ledger and save it; nothing once a write has failed."""
        if self.unrecorded is not None:
            return
        try:
            with signals_deferred():
                change()
                self.app.save(self.ledger)
        except IntegrityError:
            raise self._changed_under() from None
        except (PersistenceError, sqlite3.Error, OSError) as exc:
            self.unrecorded = write_failure_reason(exc)
            raise Unrecorded(self.unrecorded, self.ledger.domain_name) from None

    def _changed_under(self) -> LedgerChanged:
        """The error for a ledger that another process wrote to under this operation."""
        fresh: DomainLedger = self.app.load(self.ledger.id)
        now = fresh.in_flight
        if now is not None and now["operation_id"] == self.operation_id:
            who = now.get("actor", {})
            by = (f"recovery ({now.get('recovery')}) by {who.get('user')} on "
                  f"{who.get('host')} pid {who.get('pid')}" if now.get("recovery")
                  else "another process")
        else:
            by = "another process, which closed it"
        return LedgerChanged(
            f"the ledger of domain {self.ledger.domain_name!r} changed under operation "
            f"{self.operation_id}: it was taken over by {by}; this command stopped and "
            f"left the rest to it (see 'xlsnap history {self.ledger.domain_name}')")

    def _abandon(self, spec: StepSpec, done: list[tuple[int, StepSpec]]) -> NoReturn:
        """The ledger refused a write at ``spec``: undo ``done`` unrecorded, then stop."""
        with signals_deferred():
            failures = self.undo_steps(done)
        undone = [f"{s.action} on {s.target}" for _, s in done
                  if action_of(s).reversible]
        kept = [f"{s.action} on {s.target}" for _, s in done
                if not action_of(s).reversible]
        told = []
        if undone and not failures:
            told.append(f"undid {', '.join(undone)}")
        if failures:
            told.append(f"could not undo: {'; '.join(failures)}")
        if kept:
            told.append(f"cannot take back {', '.join(kept)}")
        said = "; ".join(told) or "nothing had changed yet"
        raise LedgerWriteFailed(
            f"{self.unrecorded}: the ledger could not record {spec.action} on {spec.target}; "
            f"{said}; operation {self.operation_id} stays in flight: "
            f"'xlsnap recover {self.ledger.domain_name}' will finish it")

    def _fail(
        self, spec: StepSpec, failure: ProcessResult, done: list[tuple[int, StepSpec]],
        on_irreversible: Callable[[list[StepSpec]], str] | None, before: bool = False,
    ) -> NoReturn:
        if failure.returncode == -2:
            what = (f"interrupted {'before' if before else 'at'} {spec.action} on "
                    f"{spec.target}")
        else:
            what = f"{spec.action} on {spec.target} failed: {failure.error_line() or 'error'}"
        self._undo_and_close(spec, what, done, on_irreversible)  # signals held (``run``)

    def _undo_and_close(
        self, spec: StepSpec, what: str, done: list[tuple[int, StepSpec]],
        on_irreversible: Callable[[list[StepSpec]], str] | None,
    ) -> NoReturn:
        self.undo_or_stay(what, done)
        irreversible = [s for _, s in done if not action_of(s).reversible]
        if irreversible and on_irreversible is not None:
            message = ""

            def failed() -> None:
                nonlocal message
                message = f"{what}; {on_irreversible(irreversible)}"
                self.ledger.finish(self.operation_id, "failed", message, self.actor)

            self._close_after_failure(spec, failed)
            raise PartlyDone(message)
        message = f"{what}; what was done has been undone, nothing changed"
        self._close_after_failure(spec, lambda: self.ledger.finish(
            self.operation_id, "compensated", message, self.actor))
        raise OperationFailed(message)

    def _close_after_failure(self, spec: StepSpec, change: Callable[[], None]) -> None:
        try:
            self._record(change)
        except Unrecorded:
            pass
        if self.unrecorded is not None:
            raise LedgerWriteFailed(
                f"{self.unrecorded}: {spec.action} on {spec.target} failed and what was done "
                f"was undone, but the ledger could not record it all; operation "
                f"{self.operation_id} stays in flight: 'xlsnap recover "
                f"{self.ledger.domain_name}' will finish it")


def _failure_result(argv: list[str], exc: BaseException) -> ProcessResult:
    if isinstance(exc, DriverError):
        return exc.result
    if isinstance(exc, KeyboardInterrupt):
        return ProcessResult(argv, -2, "", "interrupted")
    return ProcessResult(argv, -1, "", str(exc))
