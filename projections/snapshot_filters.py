"""Which snapshots ``snapshot-list`` shows: virsh's filters, over the tree's rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from projections.trees import child_names, descendants

Row = Mapping[str, Any]

#: A snapshot's ``state`` when the domain was stopped, or unknown (adopted by hand).
STOPPED_STATES = ("shutoff",)
UNKNOWN_STATES = ("unknown",)


class FilterError(ValueError):
    """Filters that cannot be combined, or a ``--from`` snapshot that does not exist."""


class Filters(NamedTuple):
    """The filter flags of one ``snapshot-list``."""

    roots: bool = False
    parent: bool = False
    tree: bool = False
    start: str | None = None        # --from NAME
    current: bool = False           # --current: start at the current snapshot
    descendants: bool = False
    leaves: bool = False
    no_leaves: bool = False
    active: bool = False
    inactive: bool = False
    disk_only: bool = False
    internal: bool = False
    external: bool = False

    def check(self) -> None:
        """Refuse the combinations virsh refuses."""
        shapes = [f for f, on in (("--roots", self.roots), ("--parent", self.parent),
                                  ("--tree", self.tree)) if on]
        if len(shapes) > 1:
            raise FilterError(f"{' and '.join(shapes)} exclude each other")
        if self.start is not None and self.current:
            raise FilterError("--from and --current exclude each other")
        if self.roots and (self.start is not None or self.current):
            raise FilterError("--roots does not go with --from or --current")
        if self.descendants and self.start is None and not self.current:
            raise FilterError("--descendants needs --from NAME or --current")
        if self.tree and (self.leaves or self.no_leaves):
            raise FilterError("--leaves and --no-leaves do not go with --tree")


def kind_of_state(row: Row) -> str:
    """``inactive`` (taken stopped), ``active`` (running, with memory), ``disk-only``
    (running, disks only) or ``unknown`` (adopted: the state was not seen)."""
    if row["state"] in UNKNOWN_STATES:
        return "unknown"
    if row["state"] in STOPPED_STATES:
        return "inactive"
    return "disk-only" if row["disk_only"] else "active"


def select(rows: Sequence[Row], current: str | None, f: Filters) -> list[Row]:
    """The rows ``f`` keeps, in the order given (creation order).

    The rules are virsh's (``virsh snapshot-list``): ``--roots``, ``--parent`` and
    ``--tree`` exclude each other; ``--from NAME`` (or ``--current``: from the current
    snapshot) lists NAME's children, all its descendants with ``--descendants`` or
    ``--tree``, and NAME itself only with ``--tree``; ``--leaves``/``--no-leaves`` keep
    snapshots without/with children (both: no filter) and do not go with ``--tree``.
    Within each group, ``--active``/``--inactive``/``--disk-only`` and
    ``--internal``/``--external``, a snapshot is kept if it matches any flag given.
    """
    f.check()
    by_name = {r["name"]: r for r in rows}
    children = child_names(rows)
    start = current if f.current else f.start
    if f.current and current is None:
        raise FilterError("the domain has no current snapshot")
    if start is not None and start not in by_name:
        raise FilterError(f"no snapshot named {start!r}")
    keep = set(by_name)
    if start is not None:
        if f.descendants or f.tree:
            keep = descendants(children, start)
        else:
            keep = set(children.get(start, ()))
        if f.tree:
            keep.add(start)
    if f.roots:
        keep &= set(children.get(None, ()))
    if f.leaves != f.no_leaves:
        with_children = {n for n in keep if children.get(n)}
        keep = keep - with_children if f.leaves else with_children
    states = {s for s, on in (("active", f.active), ("inactive", f.inactive),
                              ("disk-only", f.disk_only)) if on}
    if states:
        keep = {n for n in keep if kind_of_state(by_name[n]) in states}
    kinds = {k for k, on in (("internal", f.internal), ("external", f.external)) if on}
    if kinds:
        keep = {n for n in keep if _has_kind(by_name[n], kinds)}
    return [r for r in rows if r["name"] in keep]


def _has_kind(row: Row, kinds: set[str]) -> bool:
    """A mixed snapshot has internal and external disks: either flag keeps it."""
    kind = row["kind"]
    return kind in kinds or (kind == "mixed" and bool(kinds))
