"""``xlsnap adopt``."""

from __future__ import annotations

from typing import Annotated

import typer

from commands.adopt import adopt_snapshot
from commands.cli.main import services


def adopt(
    ctx: typer.Context,
    domain: Annotated[str, typer.Argument(help="Domain whose disks hold the tag.")],
    tag: Annotated[str, typer.Argument(help="The qcow2 snapshot tag made outside xlsnap.")],
) -> None:
    """Record an internal snapshot made by hand (qemu-img snapshot -c) in the ledger.

    It can then be listed, reverted and deleted like any other; history marks it
    as adopted. The tag must be a valid snapshot name not yet in the ledger.

    \b
    Example:
      xlsnap adopt web manual-before-upgrade
    """
    svc = services(ctx)
    record = adopt_snapshot(svc, domain, tag)
    disks = ", ".join(d["device"] for d in record["disks"])
    typer.echo(f"Adopted snapshot {tag} of domain {domain} (disks: {disks})")


def register(app: typer.Typer) -> None:
    app.command("adopt")(adopt)
