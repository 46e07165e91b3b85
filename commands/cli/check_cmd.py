"""``xlsnap check``."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from commands.handlers.check import check_domain
from commands.cli.main import services
from commands.errors import RecordMismatch


def check(
    ctx: typer.Context,
    domain: Annotated[str, typer.Argument(help="Domain to check.")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON.")] = False,
) -> None:
    """Compare DOMAIN's ledger with its disks and files; exit 3 if they differ.

    Reports qcow2 tags the ledger does not know (made by hand: see 'adopt'),
    snapshots whose tags, overlays or images are gone, overlays on another base,
    bases of external snapshots that changed, images unreadable, marked corrupt or
    missing their backing file, memory images whose sha256 changed, metadata files
    missing or foreign, and an operation left in flight (see 'recover').

    \b
    Examples:
      xlsnap check web
      xlsnap check --json web
    """
    svc = services(ctx, read_only=True)
    svc.sync()
    diffs = check_domain(svc, domain)
    if as_json:
        typer.echo(json.dumps(diffs, indent=2))
    elif not diffs:
        typer.echo(f"Domain {domain}: ledger and disks agree")
    else:
        for d in diffs:
            rest = ", ".join(f"{k}={v}" for k, v in d.items() if k != "kind")
            typer.echo(f"{d['kind']}: {rest}")
    if diffs:
        raise typer.Exit(RecordMismatch.exit_code)   # the ledger disagrees with the disks


def register(app: typer.Typer) -> None:
    app.command("check")(check)
