"""Snapshot names from a template for scripted use: ``nightly-{date:%Y%m%d}``.

Fields: ``date`` (local time), ``utc`` (UTC), both with strftime formats; ``epoch``
(seconds); ``domain``. Only these plain fields are allowed: no attribute or index
access (``{date.year}``, ``{x[0]}``), so a template cannot reach into Python objects.
"""

from __future__ import annotations

import string
import time
from datetime import datetime, timezone

from commands.errors import UsageError

FIELDS = ("date", "utc", "epoch", "domain")


def render_name(template: str, domain: str, now: float | None = None) -> str:
    """The snapshot name ``template`` gives for ``domain`` at ``now``."""
    now = time.time() if now is None else now
    values: dict[str, object] = {
        "date": datetime.fromtimestamp(now), "utc": datetime.fromtimestamp(now, timezone.utc),
        "epoch": int(now), "domain": domain}
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise UsageError(f"name template {template!r}: {exc}") from None
    out = []
    for literal, field, spec, conversion in parts:
        out.append(literal)
        if field is None:
            continue
        if field not in FIELDS:
            raise UsageError(f"name template {template!r}: unknown field {{{field}}}; use "
                             f"{', '.join('{' + f + '}' for f in FIELDS)}")
        if conversion is not None or (spec and "{" in spec):
            raise UsageError(f"name template {template!r}: no conversions or nested fields")
        try:
            out.append(format(values[field], spec or ""))
        except ValueError as exc:
            raise UsageError(f"name template {template!r}: {{{field}:{spec}}}: {exc}") from None
    return "".join(out)
