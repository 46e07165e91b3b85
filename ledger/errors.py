"""Errors raised by the ledger's invariants; the CLI maps them to exit codes."""

from __future__ import annotations


class LedgerError(Exception):
    """Base of the ledger's domain errors; the message is one line for a user."""


class InvalidRequest(LedgerError):
    """The request breaks an invariant (bad or taken name, unknown snapshot)."""


class OperationInFlight(LedgerError):
    """Another operation on this domain started and has not finished."""

    def __init__(self, message: str, operation: dict[str, object]) -> None:
        super().__init__(message)
        self.operation = operation


class LedgerUnavailable(LedgerError):
    """The ledger cannot be opened (bad location, unreadable database)."""


class LedgerUnreachable(LedgerError):
    """The ledger's database server cannot be reached (nothing was changed)."""


class LedgerTooNew(LedgerError):
    """The ledger was made by a newer xlsnap, with a schema this one does not know."""
