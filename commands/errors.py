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
