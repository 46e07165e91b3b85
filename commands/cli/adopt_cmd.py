"""``xlsnap adopt``."""

from __future__ import annotations

from typing import Annotated

import typer

from commands.handlers.adopt import adopt_snapshot
from commands.cli.main import services
from commands.cli.snapshot_args import one_name


def adopt(
    ctx: typer.Context,
    domain: Annotated[str, typer.Argument(help="Domain whose disks hold the tag.")],
    snapshot: Annotated[str | None, typer.Argument(
        metavar="[TAG]", help="The qcow2 snapshot tag made outside xlsnap (or -n TAG).")]
    = None,
    name_option: Annotated[str | None, typer.Option(
        "-n", "--name", help="The qcow2 snapshot tag made outside xlsnap.")] = None,
) -> None:
    """Record an internal snapshot made by hand (qemu-img snapshot -c) in the ledger.

    It can then be listed, reverted and deleted like any other; history marks it
    as adopted. The tag must be a valid snapshot name not yet in the ledger.

    \b
    Example:
      xlsnap adopt web manual-before-upgrade
      xlsnap adopt -n manual-before-upgrade web
    """
    tag = one_name(snapshot, name_option)
    svc = services(ctx)
    record = adopt_snapshot(svc, domain, tag)
    disks = ", ".join(d["device"] for d in record["disks"])
    typer.echo(f"Adopted snapshot {tag} of domain {domain} (disks: {disks})")


def register(app: typer.Typer) -> None:
    app.command("adopt")(adopt)
