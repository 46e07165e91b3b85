"""How an operation ends when its undo, its ledger or a step that cannot be undone fails."""

from __future__ import annotations

import errno

from commands.drivers.process import ProcessResult
from commands.errors import LedgerBlocked, LedgerWriteFailed


class CompensationFailed(LedgerBlocked):
    """Undoing a failed operation failed too: the operation stays in flight (exit 3)."""


class PartlyDone(LedgerBlocked):
    """A step that cannot be taken back was done before a later one failed: the change
    is recorded (a snapshot left incomplete) and the message says how to finish it."""


class LedgerChanged(LedgerBlocked):
    """Another process wrote to this operation's ledger meanwhile (a forced recover)."""


class Unrecorded(LedgerWriteFailed):
    """A ledger write of a step failed; ``reason`` says why in a few words. ``ran`` is
    None when the side effect did not run, else whether it succeeded (``result``)."""

    def __init__(self, reason: str, domain: str, ran: bool | None = None,
                 result: ProcessResult | None = None) -> None:
        super().__init__(f"{reason}: the operation stays in flight: 'xlsnap recover "
                         f"{domain}' will finish it")
        self.reason, self.domain, self.ran, self.result = reason, domain, ran, result


def write_failure_reason(exc: BaseException) -> str:
    """A few words for why the ledger refused a write: "ledger disk full" when it is."""
    text = str(exc)
    if (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) or "disk is full" in text \
            or "SQLITE_FULL" in text:
        return "ledger disk full"
    if "locked" in text or "busy" in text:
        return f"ledger locked by another process for too long ({text})"
    return f"ledger write failed ({text})"
