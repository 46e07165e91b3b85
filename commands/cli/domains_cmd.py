"""``xlsnap domains``: every domain the ledger knows, the overview an operator opens first."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer

from commands.cli.main import services
from projections.history import actor_label
from projections.snapshot_info import domains_overview


def domains(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON.")] = False,
    space: Annotated[bool, typer.Option(
        "--space", help="Add the space the snapshots hold: memory image files, the VM "
                        "state inside the qcow2 images and the external overlays (reads "
                        "every image with qemu-img info -U: no lock, slower); an image "
                        "that cannot be read shows 'unknown'.")] = False,
) -> None:
    """List every domain in the ledger: snapshots, current one, last operation (when, who,
    from which host), memory image files held, and any operation in flight.

    --space adds what the snapshots hold on disk: memory image files, VM state saved
    inside qcow2 images, external overlays. Not counted: the disk clusters an internal
    snapshot keeps (qemu-img does not report them).

    \b
    Examples:
      xlsnap domains
      xlsnap domains --json
      xlsnap domains --space
    """
    svc = services(ctx, read_only=True)
    svc.sync()
    rows = domains_overview(svc.view.db)
    if space:
        from commands.handlers.space import records_of, snapshot_space

        ids = dict(svc.view.db.execute("SELECT name, domain_id FROM view_domains").fetchall())
        for r in rows:
            r["space"] = snapshot_space(records_of(svc.view.db, ids[r["name"]]), svc.qemu_img)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("(no domains in the ledger)")
        return
    width = max(len("Domain"), *(len(r["name"]) for r in rows))
    typer.echo(f"{'Domain':<{width}}  {'Snapshots':>9}  {'Current':<20}  "
               f"{'Last event':<19}  {'By':<24}  {'Memory':>9}  "
               + (f"{'Held':>10}  " if space else "") + "In flight")
    for r in rows:
        when = (time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["last_event_at"]))
                if r["last_event_at"] else "-")
        flight = (f"{r['in_flight']['kind']} {r['in_flight']['snapshot_name'] or ''}".strip()
                  if r["in_flight"] else "-")
        memory = f"{r['memory_bytes'] / 2**20:.1f} MiB" if r["memory_bytes"] else "-"
        held = ""
        if space:
            size = r["space"]["held_bytes"]
            held = f"{'unknown' if size is None else f'{size / 2**20:.1f} MiB':>10}  "
        typer.echo(f"{r['name']:<{width}}  {r['snapshots']:>9}  {r['current'] or '-':<20}  "
                   f"{when:<19}  {actor_label(r['last_actor']):<24}  {memory:>9}  "
                   f"{held}{flight}")


def register(app: typer.Typer) -> None:
    app.command("domains")(domains)
