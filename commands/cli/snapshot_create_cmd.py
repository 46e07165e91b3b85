"""``xlsnap snapshot-create``."""

from __future__ import annotations

from typing import Annotated

import typer

from commands.cli.main import services
from commands.handlers.create import create_snapshot
from commands.errors import UsageError
from commands.handlers.messages import CreateSnapshot


def snapshot_create(
    ctx: typer.Context,
    domain: Annotated[str, typer.Argument(help="Domain name (its DOMAIN.cfg is read).")],
    cfgfile: Annotated[str | None, typer.Argument(
        help="Snapshot config file (xl.cfg syntax): name, description, type, memory, disk.")]
    = None,
    name: Annotated[str | None, typer.Option(
        "-n", "--name", help="Snapshot name [default: the config's name, else epoch seconds].")]
    = None,
    name_template: Annotated[str | None, typer.Option(
        "--name-template", help="Name from a template: fields {date:%Y%m%d} (local), "
        "{utc:...}, {epoch}, {domain}.")] = None,
    description: Annotated[str | None, typer.Option(
        "--description", help="The snapshot's description [default: the config's].")] = None,
    disk_only: Annotated[bool, typer.Option(
        "--disk-only", help="Of a running domain, snapshot the disks only, without pausing "
        "it (crash-consistent), as memory=\"no\" in a snapshot config does.")] = False,
) -> None:
    """Take a snapshot of DOMAIN: its disks, and its memory if it is running.

    A stopped domain (its DOMAIN.cfg) gets every writable qcow2 disk snapshotted
    with qemu-img. A running domain (toolstack xen or qemu, see --toolstack) gets a
    domain snapshot, as in the seed: it is paused, its memory saved (Xen: xl save -p
    to HOME/UUID/NAME.save; QEMU: inside the qcow2 images, or to that file for an
    external snapshot), all its disks snapshotted at once (one QMP transaction), and
    it is resumed, on failure too. --disk-only (or memory="no") does not pause it.

    A CFGFILE may ask for external snapshots: each disk listed as
    'hda=/abs/overlay.qcow2' gets a new qcow2 overlay on top of its image (live: the
    overlay becomes the disk the domain writes to) and the domain's config is
    rewritten to use it (the old config is kept as DOMAIN.cfg.before-NAME).
    A config that lists disks and sets no type snapshots only those disks.

    \b
    Examples:
      xlsnap snapshot-create web
      xlsnap snapshot-create -n before-upgrade web
      xlsnap snapshot-create --disk-only -n nightly web
      xlsnap --qmp-dir /run/qemu snapshot-create -n s1 vm1
      xlsnap snapshot-create web /etc/xen/snapshots/web-external.cfg
      xlsnap snapshot-create --name-template 'nightly-{date:%Y%m%d}' web
    """
    if name_template is not None:
        if name is not None:
            raise UsageError("-n and --name-template exclude each other")
        from commands.cli.name_template import render_name

        name = render_name(name_template, domain)
    svc = services(ctx)
    record = create_snapshot(CreateSnapshot(domain, name, cfgfile, disk_only, description), svc)
    disks = ", ".join(f"{d['device']} ({d['type']})" for d in record["disks"])
    how = ""
    if record.get("memory") == "yes":
        how = f" with memory ({record.get('toolstack')}, domain was {record.get('state')})"
    elif record.get("crash_consistent"):
        how = f" (disks only, taken while it ran: crash-consistent; {record.get('toolstack')})"
    typer.echo(f"Snapshot {record['name']} of domain {domain} created{how}: {disks}")


def register(app: typer.Typer) -> None:
    app.command("snapshot-create")(snapshot_create)
