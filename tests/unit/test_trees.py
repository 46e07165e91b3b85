"""Tree shapes for display."""

from __future__ import annotations

import json

from projections.trees import draw_tree, tree_json


def rows(*pairs: tuple[str, str | None]) -> list[dict]:
    return [{"name": n, "parent": p, "created_at": float(i)} for i, (n, p) in enumerate(pairs)]


def test_draws_branches_and_marks_current() -> None:
    r = rows(("a", None), ("b", "a"), ("c", "b"), ("d", "a"), ("e", "d"), ("f", None))
    assert draw_tree(r, "c") == ["+-- a", "|   +-- b", "|   |   c  <- current", "|   +-- d",
                                 "|       e", "+-- f"]


def test_two_roots_are_not_drawn_as_a_parent_and_its_child() -> None:
    chain = draw_tree(rows(("a", None), ("b", "a")), None)
    roots = draw_tree(rows(("a", None), ("b", None)), None)
    assert chain == ["a", "b"]
    assert roots == ["+-- a", "+-- b"]
    assert len({tuple(chain), tuple(roots)}) == 2
    assert draw_tree(rows(("a", None), ("b", "a"), ("c", None)), None) == [
        "+-- a", "|   b", "+-- c"]


def test_branches_inside_branches_keep_their_rails() -> None:
    r = rows(("a", None), ("b", "a"), ("x", "b"), ("y", "b"), ("d", "a"))
    assert draw_tree(r, None) == ["a", "+-- b", "|   +-- x", "|   +-- y", "+-- d"]


def test_a_chain_stays_in_one_column_without_recursion() -> None:
    r = rows(*[(f"s{i}", f"s{i - 1}" if i else None) for i in range(20000)])
    lines = draw_tree(r, "s19999")
    assert len(lines) == 20000 and max(len(x) for x in lines) == len("s19999  <- current")


def test_json_tree_is_flat_and_deep_chains_encode() -> None:
    tree = tree_json(rows(("a", None), ("b", "a"), ("c", "a")), "b")
    assert [(n["name"], n["depth"], n["current"]) for n in tree] == [
        ("a", 0, False), ("b", 1, True), ("c", 1, False)]
    assert tree[0]["children"] == ["b", "c"]
    chain = rows(*[(f"s{i}", f"s{i - 1}" if i else None) for i in range(5000)])
    assert len(json.loads(json.dumps(tree_json(chain, None)))) == 5000
