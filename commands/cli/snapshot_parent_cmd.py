"""``xlsnap snapshot-parent``: the parent of one snapshot."""

from __future__ import annotations

from typing import Annotated

import typer

from commands.cli.snapshot_info_cmd import snapshot_record
from commands.cli.snapshot_args import SnapshotArgument, SnapshotOption, one_name


def snapshot_parent(
    ctx: typer.Context,
    domain: Annotated[str, typer.Argument(help="Domain name.")],
    snapshot: SnapshotArgument = None,
    name_option: SnapshotOption = None,
) -> None:
    """Print the parent of snapshot NAME; for a root, nothing (stderr says it is a root).

    \b
    Example:
      xlsnap snapshot-parent web before-upgrade
    """
    info = snapshot_record(ctx, domain, one_name(snapshot, name_option))
    if info["parent"] is None:
        typer.echo(f"xlsnap: snapshot {info['name']!r} is a root: it has no parent", err=True)
        return
    typer.echo(info["parent"])


def register(app: typer.Typer) -> None:
    app.command("snapshot-parent")(snapshot_parent)
