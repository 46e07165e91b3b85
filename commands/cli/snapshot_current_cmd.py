"""``xlsnap snapshot-current``: the domain's current snapshot."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer

from commands.cli.main import services
from commands.errors import UsageError
from commands.handlers.find_domain import domain_id_for
from projections.snapshot_info import snapshot_info as info_of


def snapshot_current(
    ctx: typer.Context,
    domain: Annotated[str, typer.Argument(help="Domain name.")],
    mark: Annotated[str | None, typer.Argument(
        metavar="[NAME]", help="Mark this snapshot current (no revert).")] = None,
    name_only: Annotated[bool, typer.Option("--name", help="The name alone.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON.")] = False,
) -> None:
    """Print DOMAIN's current snapshot (the one the next snapshot's parent will be), or,
    with NAME, mark NAME current.

    Marking does NOT revert: the disks and memory stay as they are; only the ledger's
    idea of where the domain stands (and so the next snapshot's parent) changes. The
    mark is recorded like any operation. With no current snapshot, stdout is empty
    (null with --json) and stderr says so.

    \b
    Examples:
      xlsnap snapshot-current web
      xlsnap snapshot-current --name web
      xlsnap snapshot-current web before-upgrade    # mark it current, no revert
    """
    if mark is not None:
        if name_only or as_json:
            raise UsageError("--name and --json go with the query, not with marking NAME")
        from commands.handlers.marks import mark_current

        mark_current(services(ctx), domain, mark)
        typer.echo(f"Snapshot {mark} of domain {domain} marked current (disks unchanged)")
        return
    svc = services(ctx, read_only=True)
    svc.sync()
    domain_id = domain_id_for(svc, domain)
    row = svc.view.domain(domain_id) if domain_id else None
    current = row["current"] if row else None
    if current is None:
        if as_json:
            typer.echo("null")
        typer.echo(f"xlsnap: domain {domain!r} has no current snapshot", err=True)
        return
    if name_only:
        typer.echo(current)
    elif as_json:
        typer.echo(json.dumps(svc.view.record(domain_id, current), indent=2))
    else:
        info = info_of(svc.view.db, str(domain_id), current)
        assert info is not None
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info["created_at"]))
        typer.echo(f"{current}  ({info['type']}, {info['state']}, created {created})")


def register(app: typer.Typer) -> None:
    app.command("snapshot-current")(snapshot_current)
