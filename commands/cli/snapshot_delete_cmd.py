"""``xlsnap snapshot-delete``."""

from __future__ import annotations

from typing import Annotated

import typer

from commands.cli.main import services
from commands.cli.snapshot_args import one_name
from commands.handlers.delete import delete_snapshot
from commands.handlers.messages import DeleteSnapshot


def snapshot_delete(
    ctx: typer.Context,
    domain: Annotated[str, typer.Argument(help="Domain name.")],
    snapshot: Annotated[str | None, typer.Argument(
        metavar="[NAME]", help="Snapshot to delete (or -n NAME).")] = None,
    name_option: Annotated[str | None, typer.Option(
        "-n", "--name", help="Snapshot to delete.")] = None,
    metadata_only: Annotated[bool, typer.Option(
        "--metadata", help="Forget the snapshot (recorded), keep its tags and files: for a "
        "snapshot whose image is gone, or files an operator removes by hand.")] = False,
) -> None:
    """Delete snapshot NAME of DOMAIN: its disk state, memory image and metadata file.

    Its children get its parent; if it was current, its parent becomes current.
    A running domain's disks lose the snapshot through QMP (qemu-img cannot write to
    an image its device model holds); a stopped domain's through qemu-img.
    Only internal snapshots can be deleted so far.

    \b
    Example:
      xlsnap snapshot-delete -n before-upgrade web
      xlsnap snapshot-delete web before-upgrade
      xlsnap snapshot-delete --metadata web lost-with-its-image
    """
    name = one_name(snapshot, name_option)
    svc = services(ctx)
    delete_snapshot(DeleteSnapshot(domain, name, metadata_only), svc)
    if metadata_only:
        typer.echo(f"Snapshot {name} of domain {domain} forgotten (metadata only: its tags "
                   "and files are kept)")
        return
    typer.echo(f"Snapshot {name} of domain {domain} deleted")


def register(app: typer.Typer) -> None:
    app.command("snapshot-delete")(snapshot_delete)
