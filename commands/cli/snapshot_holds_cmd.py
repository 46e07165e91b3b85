"""``xlsnap snapshot-holds``: the holds on a domain's snapshots."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from commands.cli.main import services
from commands.errors import UsageError
from commands.handlers.find_domain import domain_id_for


def snapshot_holds(
    ctx: typer.Context,
    domain: Annotated[str, typer.Argument(help="Domain name.")],
    name: Annotated[str | None, typer.Argument(help="Only this snapshot.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON.")] = False,
) -> None:
    """List the holds on DOMAIN's snapshots (or on NAME): snapshot and tag, one a line.

    \b
    Examples:
      xlsnap snapshot-holds web
      xlsnap snapshot-holds --json web before-upgrade
    """
    svc = services(ctx, read_only=True)
    svc.sync()
    domain_id = domain_id_for(svc, domain)
    records = svc.view.records(domain_id) if domain_id else []
    if name is not None:
        records = [r for r in records if r["name"] == name]
        if not records:
            raise UsageError(f"domain {domain!r} has no snapshot named {name!r}")
    holds = [{"snapshot": r["name"], "tag": t} for r in records for t in r.get("holds", [])]
    if as_json:
        typer.echo(json.dumps(holds, indent=2))
    else:
        for h in holds:
            typer.echo(f"{h['snapshot']}\t{h['tag']}")


def register(app: typer.Typer) -> None:
    app.command("snapshot-holds")(snapshot_holds)
