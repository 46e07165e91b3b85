"""Holding SIGINT/SIGTERM while an operation must not be cut in half."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager


#: The signals that interrupt an operation (SIGTERM raises ``KeyboardInterrupt`` too).
HELD = frozenset({signal.SIGINT, signal.SIGTERM})


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM, so that an undo or a ledger write is not cut in half.

    A signal that arrives meanwhile is delivered when the outermost hold ends, unless
    ``take_interrupt`` took it first.
    """
    old = signal.pthread_sigmask(signal.SIG_BLOCK, HELD)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextmanager
def signals_allowed() -> Iterator[None]:
    """Let SIGINT/SIGTERM through (a held one now raises ``KeyboardInterrupt`` here)."""
    old = signal.pthread_sigmask(signal.SIG_UNBLOCK, HELD)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def take_interrupt() -> bool:
    """Take a held SIGINT/SIGTERM that is pending; True if there was one."""
    taken = False
    for signum in signal.sigpending() & HELD:
        signal.sigtimedwait({signum}, 0)
        taken = True
    return taken
