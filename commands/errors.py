"""Errors a user can see and the one table of exit codes (README's "Exit codes")."""

from __future__ import annotations

import importlib
import sqlite3

from commands.drivers.process import DriverError
from commands.drivers.qmp_errors import QmpBusy, QmpError, UnsafePath
from ledger.errors import (
    InvalidRequest,
    LedgerError,
    LedgerTooNew,
    LedgerUnavailable,
    LedgerUnreachable,
    OperationInFlight,
)


class XlsnapError(Exception):
    """Base of every error shown to a user; ``exit_code`` follows the design notes."""

    exit_code = 1
    #: More lines (a tool's whole stderr) shown only with ``--verbose``.
    detail = ""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(XlsnapError):
    """Bad input: names, paths, config files, missing disks. Nothing changed."""

    exit_code = 2


class ConfigError(UsageError):
    """A config file (domain or snapshot) is missing or malformed."""


class OperationFailed(XlsnapError):
    """A side effect failed and what was done was compensated: nothing changed."""

    exit_code = 1


class AttentionNeeded(XlsnapError):
    """Something needs a person before the command can go on (exit code 3)."""

    exit_code = 3


class LedgerBlocked(AttentionNeeded):
    """The ledger needs recovery: an operation in flight, or it changed or cannot be read."""


class ResourceBusy(AttentionNeeded):
    """Another process holds what the command needs: a QMP socket, a running operation."""


class RecordMismatch(AttentionNeeded):
    """The disks or files are not what the ledger recorded (a memory image, a tag)."""


class VerificationFailed(AttentionNeeded):
    """The ledger, an export or a proof failed verification, or a key does not match."""


class LedgerWriteFailed(LedgerBlocked):
    """The ledger refused a write mid-operation: the operation stays in flight for recover."""


class Interrupted(XlsnapError):
    """Ctrl-C or SIGTERM between operations (a prune between two deletes)."""

    exit_code = 130


#: The exit code of a bug (sysexits' EX_SOFTWARE).
INTERNAL_ERROR = 70

#: Errors that do not carry their own ``exit_code``, first match wins: the ledger's (an
#: operation in flight 3, a bad request 2), a tool that failed before anything changed 1
#: (a QMP socket busy with another client 3), the ledger's database failing under a
#: command 3. A dotted name is imported on first use (a command that fails early has not
#: loaded the ``eventsourcing`` library).
EXIT_CODES: tuple[tuple[type[BaseException] | str, int], ...] = (
    (OperationInFlight, 3),
    (LedgerUnreachable, 1),
    (LedgerTooNew, 3),
    (InvalidRequest, 2),
    (LedgerUnavailable, 2),
    (QmpBusy, 3),
    (DriverError, 1),
    (QmpError, 1),
    (UnsafePath, 2),
    ("eventsourcing.persistence.PersistenceError", 3),
    (sqlite3.Error, 3),
    (LedgerError, 2),
)


def exit_code(exc: BaseException) -> int:
    """The exit code of an error that ends a command: its own, else ``EXIT_CODES``."""
    if isinstance(exc, XlsnapError):
        return exc.exit_code
    for kind, code in EXIT_CODES:
        if isinstance(kind, str):
            module, _, name = kind.rpartition(".")
            kind = getattr(importlib.import_module(module), name)
            assert isinstance(kind, type)
        if isinstance(exc, kind):
            return code
    return INTERNAL_ERROR
