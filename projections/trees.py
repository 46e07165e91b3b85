"""Shapes of a domain's snapshot tree for display: rows in tree order, ASCII drawing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

Row = Mapping[str, Any]


def tree_order(rows: Sequence[Row]) -> list[tuple[int, Row, bool]]:
    """``(depth, row, is_last_child)`` in depth-first order, siblings by creation."""
    names = {r["name"] for r in rows}
    children: dict[str | None, list[Row]] = {}
    for row in rows:
        parent = row["parent"] if row["parent"] in names else None
        children.setdefault(parent, []).append(row)
    out: list[tuple[int, Row, bool]] = []
    stack: list[tuple[int, Row, bool]] = []
    roots = children.get(None, [])
    stack.extend((0, r, i == len(roots) - 1) for i, r in reversed(list(enumerate(roots))))
    while stack:
        depth, row, last = stack.pop()
        out.append((depth, row, last))
        kids = children.get(row["name"], [])
        stack.extend((depth + 1, k, i == len(kids) - 1) for i, k in reversed(list(enumerate(kids))))
    return out


def draw_tree(rows: Sequence[Row], current: str | None) -> list[str]:
    """Lines of an ASCII tree like ``virsh snapshot-list --tree``; current is marked."""
    lines: list[str] = []
    open_levels: list[bool] = []  # per depth: does a later sibling follow?
    for depth, row, last in tree_order(rows):
        del open_levels[depth:]
        prefix = "".join("|   " if more else "    " for more in open_levels[1:])
        if depth > 0:
            prefix += "+-- "
        mark = "  <- current" if row["name"] == current else ""
        lines.append(f"{prefix}{row['name']}{mark}")
        open_levels.append(not last)
    return lines


def tree_json(rows: Sequence[Row], current: str | None) -> list[dict[str, Any]]:
    """The tree as nested JSON objects ``{name, current, created_at, children}``."""
    nodes: dict[str, dict[str, Any]] = {
        r["name"]: {"name": r["name"], "current": r["name"] == current,
                    "created_at": r["created_at"], "children": []}
        for r in rows
    }
    roots: list[dict[str, Any]] = []
    for row in rows:
        parent = row["parent"]
        (nodes[parent]["children"] if parent in nodes else roots).append(nodes[row["name"]])
    return roots
