"""``xlsnap snapshot-delete``."""

from __future__ import annotations

from typing import Annotated

import typer

from commands.cli.main import services
from commands.cli.snapshot_args import one_name
from commands.handlers.delete import delete_snapshot
from commands.handlers.messages import DeleteSnapshot
from commands.handlers.delete_subtree import delete_subtree
from commands.errors import UsageError


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
    force: Annotated[bool, typer.Option(
        "--force", help="Delete an external snapshot whose backing chain was edited by hand "
        "(recorded); that disk's files are left as they are.")] = False,
    children: Annotated[bool, typer.Option(
        "--children", help="Delete the snapshot and every snapshot below it.")] = False,
    children_only: Annotated[bool, typer.Option(
        "--children-only", help="Delete every snapshot below it, keep the snapshot.")] = False,
) -> None:
    """Delete snapshot NAME of DOMAIN: its disk state, memory image and metadata file.

    Its children get its parent; if it was current, its parent becomes current.
    A running domain's disks lose the snapshot through QMP (qemu-img cannot write to
    an image its device model holds); a stopped domain's through qemu-img.
    An external snapshot's images are merged (qemu-img commit or rebase) so that no
    other snapshot's content changes, and the files that hold nothing any more are
    removed (domain stopped).

    \b
    Example:
      xlsnap snapshot-delete -n before-upgrade web
      xlsnap snapshot-delete web before-upgrade
      xlsnap snapshot-delete --metadata web lost-with-its-image
      xlsnap snapshot-delete --children-only web nightly-base
    """
    name = one_name(snapshot, name_option)
    svc = services(ctx)
    if children or children_only:
        if children and children_only:
            raise UsageError("--children and --children-only exclude each other")
        names, freed = delete_subtree(DeleteSnapshot(domain, name, metadata_only, force=force),
                                      svc, include_self=children)
        typer.echo(f"Deleted {len(names)} snapshot(s) of domain {domain}"
                   + (f": {', '.join(names)}" if names else "") + f" ({freed} bytes freed)")
        return
    freed = delete_snapshot(DeleteSnapshot(domain, name, metadata_only, force=force), svc)
    if metadata_only:
        typer.echo(f"Snapshot {name} of domain {domain} forgotten (metadata only: its tags "
                   "and files are kept)")
        return
    typer.echo(f"Snapshot {name} of domain {domain} deleted"
               + (f" ({freed} bytes freed)" if freed is not None else ""))


def register(app: typer.Typer) -> None:
    app.command("snapshot-delete")(snapshot_delete)
