"""Times users type: ISO 8601, relative to now (``2h``, ``1d12h``), ``@EPOCH`` or ``now``.

>>> parse_time("90m", now=10_000.0)
4600.0
>>> parse_time("@1700000000")
1700000000.0
"""

from __future__ import annotations

import re
import time
from datetime import datetime

from commands.errors import UsageError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_RELATIVE = re.compile(r"(?:\d+(?:\.\d+)?[smhdw])+")
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_time(text: str, now: float | None = None) -> float:
    """Epoch seconds for ``text``; a time without a zone is local time."""
    now = time.time() if now is None else now
    value = text.strip()
    if value == "now":
        return now
    if _RELATIVE.fullmatch(value):
        return now - sum(float(n) * _UNITS[u] for n, u in _PART.findall(value))
    if value.startswith("@"):
        try:
            return float(value[1:])
        except ValueError:
            pass
    else:
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            pass
    raise UsageError(f"invalid time {text!r}: use ISO 8601 (2025-01-31T12:00, local time "
                     "unless a zone is given), a time ago (90s, 15m, 2h, 1d12h, 1w), "
                     "@EPOCH or now")


def parse_optional(text: str | None, now: float | None = None) -> float | None:
    return None if text is None else parse_time(text, now)


def parse_range(since: str | None, until: str | None,
                now: float | None = None) -> tuple[float | None, float | None]:
    """``--since``/``--until`` as epoch seconds; an ``until`` before ``since`` is refused."""
    now = time.time() if now is None else now
    first, last = parse_optional(since, now), parse_optional(until, now)
    if first is not None and last is not None and last < first:
        raise UsageError(f"--until {until} ({show_time(last)}) is before --since {since} "
                         f"({show_time(first)}): nothing could match")
    return first, last


def show_time(epoch: float | None) -> str:
    """Local time as the other commands show it."""
    if epoch is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def parse_duration(text: str) -> float:
    """Seconds in a span like ``2d``, ``12h``, ``1w2d``; nothing else is a span."""
    value = text.strip()
    if not _RELATIVE.fullmatch(value):
        raise UsageError(f"invalid span {text!r}: use 90s, 15m, 2h, 1d12h, 1w")
    seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(value))
    if seconds <= 0:
        raise UsageError(f"invalid span {text!r}: it must be longer than nothing")
    return seconds
