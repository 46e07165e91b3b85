"""``xlsnap snapshot-release``: release one hold of a snapshot."""

from __future__ import annotations

from typing import Annotated

import typer

from commands.cli.main import services


def snapshot_release(
    ctx: typer.Context,
    domain: Annotated[str, typer.Argument(help="Domain name.")],
    name: Annotated[str, typer.Argument(help="The held snapshot.")],
    tag: Annotated[str, typer.Argument(help="The hold's tag.")],
) -> None:
    """Release hold TAG of snapshot NAME.

    \b
    Example:
      xlsnap snapshot-release web before-upgrade audit-2026
    """
    from commands.handlers.marks import release

    release(services(ctx), domain, name, tag)
    typer.echo(f"Snapshot {name} of domain {domain} released from {tag!r}")


def register(app: typer.Typer) -> None:
    app.command("snapshot-release")(snapshot_release)
