"""``xlsnap snapshot-edit``: rename a snapshot, or change its description."""

from __future__ import annotations

from typing import Annotated

import typer

from commands.cli.main import services
from commands.cli.snapshot_args import SnapshotArgument, SnapshotOption, one_name


def snapshot_edit(
    ctx: typer.Context,
    domain: Annotated[str, typer.Argument(help="Domain name.")],
    snapshot: SnapshotArgument = None,
    name_option: SnapshotOption = None,
    rename: Annotated[str | None, typer.Option("--rename", help="Its new name.")] = None,
    description: Annotated[str | None, typer.Option(
        "--description", help="Its new description.")] = None,
) -> None:
    """Rename snapshot NAME of DOMAIN, or change its description: one operation.

    A rename renames each disk's qcow2 tag (the domain must be stopped), the memory
    image in xlsnap's folder and the metadata file; history keeps both names, and a
    failed or interrupted rename is undone (recover finishes or undoes a crashed one).
    A held snapshot cannot be renamed.

    \b
    Examples:
      xlsnap snapshot-edit web 1700000000 --rename before-upgrade
      xlsnap snapshot-edit web before-upgrade --description "kernel 6.1 -> 6.6"
    """
    from commands.handlers.edit import edit_snapshot

    name = one_name(snapshot, name_option)
    assert name is not None
    record = edit_snapshot(services(ctx), domain, name, rename, description)
    if rename is not None and rename != name:
        typer.echo(f"Snapshot {name} of domain {domain} renamed {record['name']}")
    else:
        typer.echo(f"Snapshot {name} of domain {domain} edited")


def register(app: typer.Typer) -> None:
    app.command("snapshot-edit")(snapshot_edit)
