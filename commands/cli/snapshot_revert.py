"""``xlsnap snapshot-revert``."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from commands.cli.main import services
from commands.messages import RevertSnapshot
from commands.revert import revert_snapshot


def snapshot_revert(
    ctx: typer.Context,
    domain: Annotated[str, typer.Argument(help="Domain name.")],
    name: Annotated[str, typer.Option("-n", "--name", help="Snapshot to revert to.")],
) -> None:
    """Revert DOMAIN's disks to snapshot NAME; it becomes the current snapshot.

    Only internal snapshots can be reverted so far. If any disk fails, the disks
    already reverted are put back as they were.

    \b
    Example:
      xlsnap snapshot-revert -n before-upgrade web
    """
    svc = services(ctx)
    warnings = revert_snapshot(RevertSnapshot(domain, name), svc)
    for warning in warnings:
        print(f"xlsnap: warning: {warning}", file=sys.stderr)
    typer.echo(f"Domain {domain} reverted to snapshot {name}")


def register(app: typer.Typer) -> None:
    app.command("snapshot-revert")(snapshot_revert)
