"""``xlsnap snapshot-hold``: a ZFS-style hold that keeps a snapshot from deletion."""

from __future__ import annotations

from typing import Annotated

import typer

from commands.cli.main import services


def snapshot_hold(
    ctx: typer.Context,
    domain: Annotated[str, typer.Argument(help="Domain name.")],
    name: Annotated[str, typer.Argument(help="The snapshot to hold.")],
    tag: Annotated[str, typer.Argument(help="The hold's tag (why, or who holds it).")],
) -> None:
    """Hold snapshot NAME with TAG: while any hold remains it cannot be deleted.

    Several tags may hold one snapshot; each is released on its own. Recorded in the
    ledger like any operation.

    \b
    Example:
      xlsnap snapshot-hold web before-upgrade audit-2026
    """
    from commands.handlers.marks import hold

    hold(services(ctx), domain, name, tag)
    typer.echo(f"Snapshot {name} of domain {domain} held by {tag!r}")


def register(app: typer.Typer) -> None:
    app.command("snapshot-hold")(snapshot_hold)
