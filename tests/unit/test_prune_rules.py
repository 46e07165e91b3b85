"""prune's keep rules against a reference implementation, on generated timelines."""

from __future__ import annotations

import time
from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from commands.planning.retention import Candidate, Policy, decide

START = time.mktime((2025, 1, 1, 0, 0, 0, 0, 0, -1))
HOUR = 3600.0


def period(rule: str, stamp: float) -> tuple:
    t = time.localtime(stamp)
    if rule == "hourly":
        return t[:4]
    if rule == "daily":
        return t[:3]
    if rule == "weekly":
        return date(t.tm_year, t.tm_mon, t.tm_mday).isocalendar()[:2]
    if rule == "monthly":
        return t[:2]
    return t[:1]


def reference(snaps: list[Candidate], p: Policy, now: float) -> set[str]:
    """Group by period, newest snapshot of each period, newest periods first."""
    kept: set[str] = set()
    order = sorted(snaps, key=lambda s: (s.created_at, s.order), reverse=True)
    kept |= {s.name for s in snaps if p.within and s.created_at >= now - p.within}
    last = [s for s in order if s.name not in kept][:p.last]
    kept |= {s.name for s in last}
    for rule in ("hourly", "daily", "weekly", "monthly", "yearly"):
        n = getattr(p, rule)
        if not n:
            continue
        newest: dict[tuple, Candidate] = {}
        for s in order:
            newest.setdefault(period(rule, s.created_at), s)
        count = 0
        for key in sorted(newest, key=lambda k: (newest[k].created_at, newest[k].order),
                          reverse=True):
            if count == n:
                break
            if newest[key].name not in kept:
                kept.add(newest[key].name)
                count += 1
        if count < n and order and order[-1].name not in kept:
            kept.add(order[-1].name)
    return kept


@st.composite
def timelines(draw: st.DrawFn) -> list[Candidate]:
    gaps = draw(st.lists(st.floats(0, 200 * HOUR), min_size=0, max_size=60))
    stamps, at = [], START
    for gap in gaps:
        at += gap
        stamps.append(at)
    return [Candidate(f"s{i}", s, i) for i, s in enumerate(stamps)]


@settings(max_examples=300, deadline=None)
@given(snaps=timelines(), p=st.builds(
    Policy, within=st.sampled_from([0, 0, HOUR * 30, HOUR * 24 * 9]),
    last=st.integers(0, 4), hourly=st.integers(0, 5), daily=st.integers(0, 5),
    weekly=st.integers(0, 4), monthly=st.integers(0, 3), yearly=st.integers(0, 2)))
def test_rules_match_the_reference(snaps: list[Candidate], p: Policy) -> None:
    now = (snaps[-1].created_at if snaps else START) + HOUR
    assert set(decide(snaps, p, now)) == reference(snaps, p, now)


def test_a_year_of_hourly_snapshots_keep_daily_7_weekly_4() -> None:
    snaps = [Candidate(f"h{i}", START + i * HOUR, i) for i in range(24 * 365)]
    kept = decide(snaps, Policy(daily=7, weekly=4), now=snaps[-1].created_at)
    assert len(kept) == 11
    assert kept[snaps[-1].name] == "daily #1"
    assert sum(r.startswith("weekly") for r in kept.values()) == 4
