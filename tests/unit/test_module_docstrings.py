"""Every module of ours opens with a short docstring that says what it is for."""

from __future__ import annotations

import ast

import pytest

from tests.unit.test_import_layers import our_modules

#: At most this many lines in a module docstring: what the module is for; behaviour is
#: described where it lives (a function's or class's docstring) or in the README.
MOST_LINES = 6


def docstring_lines(source: str) -> tuple[int, int]:
    """``(lines of the first paragraph, lines in all)`` of a module's docstring; (0, 0)
    when it has none."""
    doc = ast.get_docstring(ast.parse(source), clean=False)
    if not doc or not doc.strip():
        return 0, 0
    text = doc.strip("\n")
    return len(text.split("\n\n")[0].splitlines()), len(text.splitlines())


def test_the_counter_counts() -> None:
    assert docstring_lines('"""One.\n\nTwo\nthree.\n"""\n') == (1, 4)
    assert docstring_lines("x = 1\n") == (0, 0)


@pytest.mark.parametrize("name", sorted(our_modules()))
def test_module_docstring_is_short(name: str) -> None:
    source = our_modules()[name].read_text()
    if not source.strip():
        return  # an empty __init__.py says nothing and needs nothing
    first, total = docstring_lines(source)
    assert first >= 1, f"{name} has no module docstring"
    assert first <= 3 and total <= MOST_LINES, (
        f"{name}: module docstring of {total} lines (first paragraph {first}); keep what "
        "the module is for, move behaviour to the functions or the README")
