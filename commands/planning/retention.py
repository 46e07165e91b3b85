"""Which snapshots a retention policy keeps: borg prune's rules, over creation times."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

RULES = ("hourly", "daily", "weekly", "monthly", "yearly")
_PERIODS: dict[str, Callable[[time.struct_time], tuple[int, ...]]] = {
    "hourly": lambda t: (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour),
    "daily": lambda t: (t.tm_year, t.tm_mon, t.tm_mday),
    "weekly": lambda t: _iso_week(t),
    "monthly": lambda t: (t.tm_year, t.tm_mon),
    "yearly": lambda t: (t.tm_year,),
}


class Policy(NamedTuple):
    """How many of each to keep; ``within`` in seconds (0: none)."""

    within: float = 0
    last: int = 0
    hourly: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0
    yearly: int = 0

    def empty(self) -> bool:
        return not any(self)

    def describe(self) -> str:
        return ", ".join(f"keep-{k}={v}" for k, v in self._asdict().items() if v)


class Candidate(NamedTuple):
    """One snapshot: its name, creation time, and creation order (ties in a second)."""

    name: str
    created_at: float
    order: int = 0


def _iso_week(t: time.struct_time) -> tuple[int, ...]:
    import datetime

    year, week, _ = datetime.date(t.tm_year, t.tm_mon, t.tm_mday).isocalendar()
    return (year, week)


def decide(snapshots: Sequence[Candidate], policy: Policy,
           now: float | None = None) -> dict[str, str]:
    """Each kept snapshot's name -> the rule that keeps it (``daily #3``, ...).

    Rules run in the order ``within``, ``last``, ``hourly``, ``daily``, ``weekly``
    (ISO weeks), ``monthly``, ``yearly``. A period rule walks the snapshots newest first;
    the first snapshot of each new period is kept unless an earlier rule kept it already
    (the period is then used up without counting), until N are kept; if fewer than N
    periods exist, the oldest snapshot is kept too (borg's ``[oldest]``). Local time.
    """
    now = time.time() if now is None else now
    newest_first = sorted(snapshots, key=lambda s: (s.created_at, s.order), reverse=True)
    kept: dict[str, str] = {}
    if policy.within:
        for s in newest_first:
            if s.created_at >= now - policy.within:
                kept[s.name] = "within"
    if policy.last:
        for s in newest_first:
            if len([r for r in kept.values() if r.startswith("last")]) == policy.last:
                break
            if s.name not in kept:
                kept[s.name] = f"last #{sum(r.startswith('last') for r in kept.values()) + 1}"
    for rule in RULES:
        wanted = getattr(policy, rule)
        if not wanted:
            continue
        count, last_period = 0, None
        for s in newest_first:
            period = _PERIODS[rule](time.localtime(s.created_at))
            if period == last_period:
                continue
            last_period = period
            if s.name not in kept:
                count += 1
                kept[s.name] = f"{rule} #{count}"
                if count == wanted:
                    break
        if count < wanted and newest_first and newest_first[-1].name not in kept:
            kept[newest_first[-1].name] = f"{rule} [oldest]"
    return kept
