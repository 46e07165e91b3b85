"""``xlsnap snapshot-revert``."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from commands.cli.main import services
from commands.cli.snapshot_args import one_name
from commands.errors import UsageError
from commands.handlers.messages import RevertSnapshot
from commands.handlers.revert import revert_snapshot


def snapshot_revert(
    ctx: typer.Context,
    domain: Annotated[str, typer.Argument(help="Domain name.")],
    snapshot: Annotated[str | None, typer.Argument(
        metavar="[NAME]", help="Snapshot to revert to (or -n NAME).")] = None,
    name_option: Annotated[str | None, typer.Option(
        "-n", "--name", help="Snapshot to revert to.")] = None,
    running: Annotated[bool, typer.Option(
        "--running", help="Leave the domain running after the revert.")] = False,
    paused: Annotated[bool, typer.Option(
        "--paused", help="Leave the domain paused after the revert.")] = False,
    force: Annotated[bool, typer.Option(
        "--force", help="Restore a memory image even though its sha256 differs from the "
        "ledger's (the ledger records that it was forced).")] = False,
) -> None:
    """Revert DOMAIN to snapshot NAME: disks, and memory for a domain snapshot.

    A stopped domain gets its disks reverted with qemu-img (internal snapshots). A
    running domain goes back to the moment of the snapshot, disks and memory: on Xen
    it is destroyed, its disks reverted, its memory image restored (xl restore -p)
    and unpaused; on QEMU the snapshot is loaded (snapshot-load), or QEMU is started
    again from its own command line with the saved memory (external snapshots) or
    cold (disk-only snapshots). Afterwards the domain is in the snapshot's state,
    unless --running or --paused says otherwise (as in libvirt). A memory image whose
    sha256 differs from the ledger's is refused (exit 3) unless --force.

    If any step fails, what was done is undone: the disks, and the domain as it was.

    \b
    Examples:
      xlsnap snapshot-revert -n before-upgrade web
      xlsnap snapshot-revert web before-upgrade
      xlsnap snapshot-revert --paused -n before-upgrade web
      xlsnap --qmp-dir /run/qemu snapshot-revert -n s1 vm1
    """
    name = one_name(snapshot, name_option)
    if running and paused:
        raise UsageError("--running and --paused exclude each other")
    state = "running" if running else "paused" if paused else None
    svc = services(ctx)
    warnings = revert_snapshot(RevertSnapshot(domain, name, state, force), svc)
    for warning in warnings:
        print(f"xlsnap: warning: {warning}", file=sys.stderr)
    suffix = f" ({state})" if state else ""
    typer.echo(f"Domain {domain} reverted to snapshot {name}{suffix}")


def register(app: typer.Typer) -> None:
    app.command("snapshot-revert")(snapshot_revert)
