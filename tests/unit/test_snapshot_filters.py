"""snapshot-list's filters against an independent computation over random trees."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from projections.snapshot_filters import FilterError, Filters, kind_of_state, select

STATES = [("shutoff", 1), ("running", 0), ("running", 1), ("paused", 0), ("unknown", 1)]


@st.composite
def trees(draw: st.DrawFn) -> list[dict]:
    """Snapshots s0..sN in creation order; each parent (if any) was created before it."""
    size = draw(st.integers(0, 12))
    rows = []
    for i in range(size):
        parent = draw(st.one_of(st.none(), st.integers(0, i - 1))) if i else None
        state, disk_only = draw(st.sampled_from(STATES))
        rows.append({"name": f"s{i}", "parent": None if parent is None else f"s{parent}",
                     "state": state, "disk_only": disk_only,
                     "kind": draw(st.sampled_from(["internal", "external", "mixed"])),
                     "created_at": float(i)})
    return rows


def ancestors(rows: list[dict], name: str) -> list[str]:
    """Walk up the parents: the independent way to know who is below whom."""
    parent_of = {r["name"]: r["parent"] for r in rows}
    found, at = [], parent_of[name]
    while at is not None:
        found.append(at)
        at = parent_of[at]
    return found


def expected(rows: list[dict], current: str | None, f: Filters) -> list[str]:
    start = current if f.current else f.start
    out = []
    for r in rows:
        name = r["name"]
        ups = ancestors(rows, name)
        has_children = any(x["parent"] == name for x in rows)
        if start is not None:
            below = start in ups if (f.descendants or f.tree) else r["parent"] == start
            if not (below or (f.tree and name == start)):
                continue
        if f.roots and r["parent"] is not None:
            continue
        if f.leaves and not f.no_leaves and has_children:
            continue
        if f.no_leaves and not f.leaves and not has_children:
            continue
        wanted_states = [s for s, on in (("active", f.active), ("inactive", f.inactive),
                                         ("disk-only", f.disk_only)) if on]
        if wanted_states:
            if r["state"] == "unknown":
                continue
            state = ("inactive" if r["state"] == "shutoff"
                     else "disk-only" if r["disk_only"] else "active")
            if state not in wanted_states:
                continue
        kinds = [k for k, on in (("internal", f.internal), ("external", f.external)) if on]
        if kinds and not (r["kind"] in kinds or r["kind"] == "mixed"):
            continue
        out.append(name)
    return out


@settings(max_examples=400, deadline=None)
@given(rows=trees(), data=st.data())
def test_filters_match_an_independent_computation(rows: list[dict], data: st.DataObject) -> None:
    names = [r["name"] for r in rows]
    current = data.draw(st.one_of(st.none(), st.sampled_from(names))) if names else None
    start = data.draw(st.one_of(st.none(), st.sampled_from(names))) if names else None
    flags = {k: data.draw(st.booleans()) for k in (
        "roots", "parent", "tree", "current", "descendants", "leaves", "no_leaves",
        "active", "inactive", "disk_only", "internal", "external")}
    f = Filters(start=start, **flags)
    try:
        f.check()
    except FilterError:
        shapes = f.roots + f.parent + f.tree
        assert (shapes > 1 or (start is not None and f.current)
                or (f.roots and (start is not None or f.current))
                or (f.descendants and start is None and not f.current)
                or (f.tree and (f.leaves or f.no_leaves)))
        return
    if f.current and current is None:
        with pytest.raises(FilterError, match="no current snapshot"):
            select(rows, current, f)
        return
    assert [r["name"] for r in select(rows, current, f)] == expected(rows, current, f)


def test_virsh_combination_rules_are_refused() -> None:
    for bad in (Filters(roots=True, tree=True), Filters(parent=True, roots=True),
                Filters(roots=True, start="a"), Filters(descendants=True),
                Filters(tree=True, leaves=True), Filters(start="a", current=True)):
        with pytest.raises(FilterError):
            bad.check()


def test_an_unknown_from_snapshot_is_refused() -> None:
    with pytest.raises(FilterError, match="no snapshot named 'zz'"):
        select([], None, Filters(start="zz"))


def test_states_of_snapshots() -> None:
    assert kind_of_state({"state": "shutoff", "disk_only": 1}) == "inactive"
    assert kind_of_state({"state": "running", "disk_only": 0}) == "active"
    assert kind_of_state({"state": "paused", "disk_only": 1}) == "disk-only"
    assert kind_of_state({"state": "unknown", "disk_only": 1}) == "unknown"
