"""``xlsnap snapshot-create``."""

from __future__ import annotations

from typing import Annotated

import typer

from commands.cli.main import services
from commands.create import create_snapshot
from commands.messages import CreateSnapshot


def snapshot_create(
    ctx: typer.Context,
    domain: Annotated[str, typer.Argument(help="Domain name (its DOMAIN.cfg is read).")],
    cfgfile: Annotated[str | None, typer.Argument(
        help="Snapshot config file (xl.cfg syntax): name, description, type, memory, disk.")]
    = None,
    name: Annotated[str | None, typer.Option(
        "-n", "--name", help="Snapshot name [default: the config's name, else epoch seconds].")]
    = None,
) -> None:
    """Take a snapshot of DOMAIN's disks.

    Without CFGFILE every writable qcow2 disk gets an internal snapshot. A CFGFILE
    may ask for external snapshots: each disk listed as 'hda=/abs/overlay.qcow2'
    gets a new qcow2 overlay on top of its image and the domain's config is
    rewritten to use it (the old config is kept as DOMAIN.cfg.before-NAME).
    A config that lists disks and sets no type snapshots only those disks.

    \b
    Examples:
      xlsnap snapshot-create web
      xlsnap snapshot-create -n before-upgrade web
      xlsnap snapshot-create web /etc/xen/snapshots/web-external.cfg
    """
    svc = services(ctx)
    record = create_snapshot(CreateSnapshot(domain, name, cfgfile), svc)
    disks = ", ".join(f"{d['device']} ({d['type']})" for d in record["disks"])
    typer.echo(f"Snapshot {record['name']} of domain {domain} created: {disks}")


def register(app: typer.Typer) -> None:
    app.command("snapshot-create")(snapshot_create)
