"""``xlsnap history``: every recorded event, oldest first."""

from __future__ import annotations

import json
import time
from uuid import UUID
from typing import Annotated

import typer

from commands.cli.main import services
from commands.lookup import domain_id_for
from projections.history import describe, history_rows


def history(
    ctx: typer.Context,
    domain: Annotated[str | None, typer.Argument(help="Only this domain's events.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON.")] = False,
) -> None:
    """Show every recorded event: time, actor, operation, what ran and its outcome.

    \b
    Examples:
      xlsnap history web
      xlsnap history --json
    """
    svc = services(ctx)
    svc.sync()
    names = {str(r["domain_id"]): r["name"] for r in svc.view.domains()}
    if domain is not None:
        domain_id = domain_id_for(svc, domain)
        events = ([] if domain_id is None
                  else [(None, e) for e in svc.app.events.get(UUID(domain_id))])
    else:
        events = list(svc.app.iter_log())
    rows = list(history_rows(events, names))
    if as_json:
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    for row in rows:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row["time"]))
        actor = row["actor"] or {}
        who = actor.get("user", "?") + (f" (sudo by {actor['sudo_user']})"
                                        if actor.get("sudo_user") else "")
        op = (row["operation_id"] or "")[:8]
        typer.echo(f"{when}  {row['domain']:<12} {who}@{actor.get('host', '?')}  "
                   f"{op:<8}  {row['event']:<18} {describe(row)}")


def register(app: typer.Typer) -> None:
    app.command("history")(history)
