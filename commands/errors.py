"""Errors a user can see: each carries its exit code; the message is one line."""

from __future__ import annotations


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


class LedgerBlocked(XlsnapError):
    """The ledger needs recovery (an operation is in flight) or failed verification."""

    exit_code = 3


class LedgerWriteFailed(LedgerBlocked):
    """The ledger refused a write mid-operation: the operation stays in flight for recover."""


class Interrupted(XlsnapError):
    """Ctrl-C or SIGTERM between operations (a prune between two deletes)."""

    exit_code = 130
