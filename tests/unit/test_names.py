"""Snapshot names must be safe as qcow2 tags and file names."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.errors import InvalidRequest
from ledger.names import check_snapshot_name


@pytest.mark.parametrize("name", ["s1", "1764322216", "before-upgrade", "a.b_c+d:e@f"])
def test_good_names_pass(name: str) -> None:
    assert check_snapshot_name(name) == name


@pytest.mark.parametrize("name, why", [
    ("", "empty"), ("x" * 65, "too long"), ("a/b", "path separator"), ("a..b", "'..'"),
    ("..", "'..'"), ("a\x00b", "control"), ("tab\there", "control"), ("xlsnap-x", "reserved"),
    ("-flag", "start with"), ("sp ace", "characters"),
])
def test_bad_names_are_refused_with_the_reason(name: str, why: str) -> None:
    with pytest.raises(InvalidRequest, match=why):
        check_snapshot_name(name)


@given(st.text())
def test_any_accepted_name_stays_inside_its_folder(name: str) -> None:
    try:
        check_snapshot_name(name)
    except InvalidRequest as exc:
        assert "\n" not in str(exc)
        return
    assert "/" not in name and ".." not in name and "\x00" not in name and name
