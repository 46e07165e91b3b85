"""Snapshot names from templates: the fields, and nothing else reachable."""

from __future__ import annotations

import time

import pytest

from commands.errors import UsageError
from commands.cli.name_template import render_name

NOW = time.mktime((2026, 12, 3, 4, 5, 6, 0, 0, -1))


def test_fields_render() -> None:
    assert render_name("nightly-{date:%Y%m%d}", "web", NOW) == "nightly-20261203"
    assert render_name("{domain}-{epoch}", "web", NOW) == f"web-{int(NOW)}"
    assert render_name("plain", "web", NOW) == "plain"


@pytest.mark.parametrize("template, words", [
    ("{date.__class__}", "unknown field"), ("{x}", "unknown field"),
    ("{domain!r}", "no conversions"), ("{date", "name template"),
    ("{epoch:%Q}", "name template"), ("{domain[0]}", "unknown field"),
])
def test_other_fields_and_forms_are_refused(template: str, words: str) -> None:
    with pytest.raises(UsageError, match=words):
        render_name(template, "web", NOW)
