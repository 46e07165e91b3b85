"""Times as users type them."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from commands.errors import UsageError
from commands.cli.timespec import parse_time

NOW = 1_800_000_000.0


@pytest.mark.parametrize(("text", "ago"), [("90s", 90), ("15m", 900), ("2h", 7200),
                                           ("1d12h", 129600), ("1w", 604800), ("1.5h", 5400)])
def test_times_ago(text: str, ago: float) -> None:
    assert parse_time(text, NOW) == NOW - ago


def test_iso_times_with_and_without_a_zone() -> None:
    assert parse_time("2025-01-31T12:00:00+00:00") == datetime(
        2025, 1, 31, 12, tzinfo=timezone.utc).timestamp()
    assert parse_time("2025-01-31T12:00") == datetime(2025, 1, 31, 12).timestamp()  # local
    assert parse_time("2025-01-31T12:00Z") == parse_time("2025-01-31T12:00+00:00")


def test_epoch_and_now() -> None:
    assert parse_time("@1700000000.5") == 1700000000.5
    assert parse_time("now", NOW) == NOW


@pytest.mark.parametrize("text", ["", "yesterday", "2h ago", "@x", "5y", "2025-13-01"])
def test_anything_else_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError, match="invalid time"):
        parse_time(text, NOW)
