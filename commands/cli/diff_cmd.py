"""``xlsnap diff``: what changed in a domain's snapshot tree between two moments, and who."""

# No 'from __future__ import annotations': typer would compile every annotation string
# of every command at each start-up.

import json
import sys
from typing import Annotated, Any

import typer

from commands.cli.main import services
from commands.errors import UsageError
from commands.handlers.find_domain import recorded_domain_id
from commands.cli.timespec import parse_time, show_time
from projections.diff import diff_domain
from projections.history import actor_label
from projections.timeline import last_position, position_as_of

_MARKS = {"created": "+", "deleted": "-", "reverted": ">", "renamed": "~",
          "disks-removed": "!", "marked-current": "*", "held": "h", "released": "r"}


def diff(
    ctx: typer.Context,
    domain: Annotated[str, typer.Argument(help="Domain name.")],
    since: Annotated[str | None, typer.Option(
        "--from", help="The earlier moment: ISO 8601, or ago like 2h, 3d.")] = None,
    until: Annotated[str | None, typer.Option(
        "--to", help="The later moment [default: now].")] = None,
    from_event: Annotated[int | None, typer.Option(
        "--from-event", help="The earlier moment as a log position.")] = None,
    to_event: Annotated[int | None, typer.Option(
        "--to-event", help="The later moment as a log position.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON.")] = False,
) -> None:
    """List the snapshots created, deleted, reverted to and renamed between two moments,
    with who did each, and how the current snapshot moved.

    Moments are read as 'xlsnap replay --as-of' reads them (commit order).

    \b
    Examples:
      xlsnap diff web --from 2025-01-31T09:00 --to 2025-01-31T18:00
      xlsnap diff web --from 1w --json
    """
    if (since is None) == (from_event is None):
        raise UsageError("give --from TIME or --from-event N (one of them)")
    if until is not None and to_event is not None:
        raise UsageError("give --to TIME or --to-event N, not both")
    svc = services(ctx, read_only=True)
    svc.sync()
    db = svc.view.db
    size = last_position(db)
    first = from_event if from_event is not None else position_as_of(db, parse_time(since or ""))
    last = (to_event if to_event is not None else
            position_as_of(db, parse_time(until)) if until is not None else size)
    for label, value in (("--from-event", first), ("--to-event", last)):
        if not 0 <= value <= size:
            raise UsageError(f"{label} {value}: the log holds positions 1..{size}")
    if first > last:
        raise UsageError(f"the earlier moment (position {first}) comes after the later one "
                         f"(position {last})")
    domain_id = recorded_domain_id(svc, domain)
    result = diff_domain(svc.app, db, domain_id, first, last)
    for warning in result.warnings:
        print(f"xlsnap: warning: {warning}", file=sys.stderr)
    if as_json:
        typer.echo(json.dumps({"domain": domain, **result.to_json()}, indent=2, default=str))
        return
    typer.echo(f"Domain {domain}: from log position {first} to {last}")
    for change in result.changes:
        typer.echo(_line(change))
    if not result.changes:
        typer.echo("(no snapshot changes)")
    before, after = result.current
    typer.echo(f"current: {before or '(none)'} -> {after or '(none)'}")


def _line(change: dict[str, Any]) -> str:
    name = change["name"]
    if change["change"] == "renamed":
        return f"~ {change['old_name']} -> {name}  renamed"
    extra = f"  (parent {change['parent']})" if change.get("parent") else ""
    if change["change"] == "disks-removed":
        extra = f"  ({', '.join(change.get('devices') or [])})"
    op = (change.get("operation_id") or "")[:8]
    return (f"{_MARKS[change['change']]} {name}  {change['change']} {show_time(change['time'])} "
            f"by {actor_label(change.get('actor'))}  op {op}  position {change['position']}"
            f"{extra}")


def register(app: typer.Typer) -> None:
    app.command("diff")(diff)
