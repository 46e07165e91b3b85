"""``xlsnap replay``: a domain's snapshot tree as it was at a past moment."""

# No 'from __future__ import annotations': typer would compile every annotation string
# of every command at each start-up.

import json
import sys
from typing import Annotated, Any

import typer

from commands.cli.main import services
from commands.cli.snapshot_list_cmd import short_row, short_table
from commands.errors import UsageError
from commands.handlers.find_domain import recorded_domain_id
from commands.state.snapshot_metadata import render_libxl_json
from commands.bootstrap import Services
from commands.cli.timespec import parse_time, show_time
from projections.replay import PastState, replay_domain
from projections.timeline import high_water_at, last_position, position_as_of
from projections.trees import draw_tree, tree_json


def replay(
    ctx: typer.Context,
    domain: Annotated[str, typer.Argument(help="Domain name.")],
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="The moment: ISO 8601, or ago like 2h, 3d.")] = None,
    at_event: Annotated[int | None, typer.Option(
        "--at-event", help="Right after the event at this log position.")] = None,
    long: Annotated[bool, typer.Option("-l", "--long",
                                       help="Every snapshot's metadata as libxl-json.")] = False,
    table: Annotated[bool, typer.Option("--table", help="The short table, not the tree.")]
    = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON.")] = False,
) -> None:
    """Show DOMAIN's snapshot tree, current snapshot and metadata as they were then.

    The past is rebuilt from the event log. '--as-of T' means the longest prefix of
    the log whose events were all stamped no later than T, in commit order (writers'
    clocks are not ordered, so a later commit may carry an earlier stamp; counting it
    would show a state that never existed). The first line names the log position.

    \b
    Examples:
      xlsnap replay web --as-of 2025-01-31T09:00
      xlsnap replay web --as-of 3d --json
      xlsnap replay web --at-event 1200 -l
    """
    if (as_of is None) == (at_event is None):
        raise UsageError("give --as-of TIME or --at-event N (one of them)")
    when = parse_time(as_of) if as_of is not None else None
    svc = services(ctx, read_only=True)
    svc.sync()
    domain_id = recorded_domain_id(svc, domain)
    position = _position(svc, when, at_event)
    past = replay_domain(svc.app, svc.view.db, domain_id, position)
    try:
        for warning in past.warnings:
            print(f"xlsnap: warning: {warning}", file=sys.stderr)
        _show(svc, domain, past, when, long, table, as_json)
    finally:
        past.close()


def _position(svc: Services, when: float | None, at_event: int | None) -> int:
    size = last_position(svc.view.db)
    if when is not None:
        return position_as_of(svc.view.db, when)
    assert at_event is not None
    if not 0 <= at_event <= size:
        raise UsageError(f"there is no event {at_event}: the log holds positions 1..{size}")
    return at_event


def _show(svc: Services, domain: str, past: PastState, when: float | None, long: bool,
          table: bool, as_json: bool) -> None:
    rows, current = past.rows(), past.current
    size = last_position(svc.view.db)
    stamp = high_water_at(svc.view.db, past.position) if past.position else None
    if as_json:
        out: dict[str, Any] = {
            "domain": domain, "domain_id": past.domain_id, "as_of": when,
            "position": past.position, "log_size": size, "position_time": stamp,
            "current": current, "tree": tree_json(rows, current),
            "snapshots": [short_row(r, current) for r in rows], "records": past.records()}
        typer.echo(json.dumps(out, indent=2))
        return
    moment = f"as of {show_time(when)}: after" if when is not None else "after"
    typer.echo(f"Domain {domain} {moment} log position {past.position} of {size}"
               + (f" (the log's clock then: {show_time(stamp)})" if stamp is not None else ""))
    if long:
        typer.echo(render_libxl_json(past.records()), nl=False)
    elif table:
        typer.echo(short_table(rows, current))
    else:
        typer.echo("\n".join(draw_tree(rows, current)) if rows else "(no snapshots)")


def register(app: typer.Typer) -> None:
    app.command("replay")(replay)
