"""``xlsnap recover``."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from commands.cli.main import services
from commands.errors import LedgerBlocked, UsageError
from commands.handlers.find_domain import domain_id_for
from commands.handlers.recover import recover_all, recover_domain


def recover(
    ctx: typer.Context,
    domain: Annotated[str | None, typer.Argument(help="Domain to recover.")] = None,
    every: Annotated[bool, typer.Option("--all", help="Every domain with an operation "
                                        "in flight.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Also recover an operation whose "
                                        "process ran on another host (recorded).")] = False,
) -> None:
    """Finish or undo an operation left in flight by a crash or a failed undo.

    Recovery inspects the disks and files for every step whose outcome is missing,
    records what it found and what it decided, then rolls the operation forward
    (every step happened) or back (undoing in reverse). Running it again changes
    nothing. An operation whose process still runs here is refused (exit 3); one
    whose process ran on another host needs --force.

    \b
    Examples:
      xlsnap recover web
      xlsnap recover --all
    """
    if (domain is None) == (not every):
        raise UsageError("name a DOMAIN or give --all (not both)")
    svc = services(ctx)
    svc.sync()
    if every:
        results = recover_all(svc, force)
    else:
        domain_id = domain_id_for(svc, domain or "")
        results = [recover_domain(svc, domain_id, force)] if domain_id else []
    if as_json:
        typer.echo(json.dumps([r.__dict__ for r in results], indent=2))
    else:
        if not results:
            typer.echo("Nothing in flight")
        for r in results:
            typer.echo(f"{r.domain}: {r.message}")
    refused = [r for r in results if r.decision == "refused"]
    if refused:
        raise LedgerBlocked(f"{len(refused)} domain(s) not recovered: "
                            f"{', '.join(r.domain for r in refused)}")


def register(app: typer.Typer) -> None:
    app.command("recover")(recover)
