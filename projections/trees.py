"""Shapes of a domain's snapshot tree for display: rows in tree order, ASCII drawing.

A chain (a snapshot with one child) stays in one column; only a branch point moves
its children one column right. So a 10,000-snapshot chain is 10,000 short lines,
and nothing here recurses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Row = Mapping[str, Any]


@dataclass(frozen=True)
class Placed:
    """One snapshot placed in the drawing: its column, and whether it opens a branch."""

    row: Row
    depth: int
    branch: bool
    last: bool


def children_by_parent(rows: Sequence[Row]) -> dict[str | None, list[Row]]:
    """Each snapshot's children in the rows' order; roots (and orphans) under ``None``."""
    names = {r["name"] for r in rows}
    children: dict[str | None, list[Row]] = {}
    for row in rows:
        parent = row["parent"] if row["parent"] in names else None
        children.setdefault(parent, []).append(row)
    return children


def child_names(rows: Sequence[Row]) -> dict[str | None, list[str]]:
    """``children_by_parent`` with names only."""
    return {parent: [r["name"] for r in kids]
            for parent, kids in children_by_parent(rows).items()}


def descendants(children: Mapping[str | None, Sequence[str]], start: str) -> set[str]:
    """Every name below ``start`` in a name -> child names map (no recursion)."""
    found: set[str] = set()
    stack = list(children.get(start, ()))
    while stack:
        name = stack.pop()
        found.add(name)
        stack.extend(children.get(name, ()))
    return found


def tree_order(rows: Sequence[Row], roots_branch: bool = False) -> list[Placed]:
    """Every snapshot in depth-first order, siblings by creation, with its column.

    With ``roots_branch``, several roots open branches of their own (column 1), so a
    drawing cannot show two roots as a parent and its only child.
    """
    children = children_by_parent(rows)
    out: list[Placed] = []
    roots = children.get(None, [])
    if roots_branch and len(roots) > 1:
        stack = [Placed(r, 1, True, i == len(roots) - 1) for i, r in reversed(list(enumerate(roots)))]
    else:
        stack = [Placed(r, 0, False, True) for r in reversed(roots)]
    while stack:
        placed = stack.pop()
        out.append(placed)
        kids = children.get(placed.row["name"], [])
        if len(kids) == 1:
            stack.append(Placed(kids[0], placed.depth, False, True))
        else:
            stack.extend(Placed(k, placed.depth + 1, True, i == len(kids) - 1)
                         for i, k in reversed(list(enumerate(kids))))
    return out


def draw_tree(rows: Sequence[Row], current: str | None) -> list[str]:
    """Lines of an ASCII tree (``+--`` at each branch); the current snapshot is marked.

    A snapshot right below another in the same column is its only child; several roots
    each start a branch (``+--``) of their own.
    """
    lines: list[str] = []
    open_levels: list[bool] = [False]  # per column: does a later sibling follow?
    for placed in tree_order(rows, roots_branch=True):
        depth = placed.depth
        if placed.branch:
            del open_levels[depth:]
            open_levels.append(not placed.last)
            prefix = "".join("|   " if more else "    " for more in open_levels[1:depth])
            prefix += "+-- "
        else:
            prefix = "".join("|   " if more else "    " for more in open_levels[1:depth + 1])
        mark = "  <- current" if placed.row["name"] == current else ""
        lines.append(f"{prefix}{placed.row['name']}{mark}")
    return lines


def tree_json(rows: Sequence[Row], current: str | None) -> list[dict[str, Any]]:
    """The tree as a flat list in drawing order: ``{name, parent, depth, current,
    created_at, children}`` (flat, so a deep chain cannot overflow a JSON encoder)."""
    children = children_by_parent(rows)
    return [{"name": p.row["name"], "parent": p.row["parent"], "depth": p.depth,
             "current": p.row["name"] == current, "created_at": p.row["created_at"],
             "children": [k["name"] for k in children.get(p.row["name"], [])]}
            for p in tree_order(rows)]
