"""Tree shapes for display."""

from __future__ import annotations

from projections.trees import draw_tree, tree_json


def rows(*pairs: tuple[str, str | None]) -> list[dict]:
    return [{"name": n, "parent": p, "created_at": float(i)} for i, (n, p) in enumerate(pairs)]


def test_draws_branches_and_marks_current() -> None:
    r = rows(("a", None), ("b", "a"), ("c", "b"), ("d", "a"), ("e", "d"), ("f", None))
    assert draw_tree(r, "c") == ["a", "+-- b", "|   +-- c  <- current", "+-- d",
                                 "    +-- e", "f"]


def test_deep_chains_do_not_recurse() -> None:
    r = rows(*[(f"s{i}", f"s{i - 1}" if i else None) for i in range(5000)])
    assert len(draw_tree(r, None)) == 5000


def test_json_tree_nests_children() -> None:
    tree = tree_json(rows(("a", None), ("b", "a")), "b")
    assert tree[0]["name"] == "a" and tree[0]["children"][0]["current"] is True
