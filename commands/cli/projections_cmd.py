"""``xlsnap projections``: rebuild the read model and the metadata files from the log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from commands.cli.main import services
from commands.state.snapshot_metadata import write_metadata

group = typer.Typer(help="Rebuild what is derived from the ledger.\n\n\b\nExamples:\n"
                         "  xlsnap projections rebuild\n  xlsnap projections metadata web",
                    no_args_is_help=True)


@group.command("rebuild")
def rebuild(ctx: typer.Context) -> None:
    """Drop the snapshot-tree tables and project the whole event log again.

    \b
    Example:
      xlsnap projections rebuild
    """
    svc = services(ctx)
    count = svc.view.rebuild()
    typer.echo(f"Projected {count} events")


@group.command("metadata")
def metadata(
    ctx: typer.Context,
    domain: Annotated[str | None, typer.Argument(help="Only this domain.")] = None,
) -> None:
    """Write every snapshot's snapshotdata-NAME.libxl-json file again from the ledger.

    \b
    Example:
      xlsnap projections metadata web
    """
    svc = services(ctx)
    svc.sync()
    written = 0
    for row in svc.view.domains():
        if domain is not None and row["name"] != domain:
            continue
        folder: Path = svc.settings.domain_dir(row["uuid"])
        for snap in svc.view.snapshot_rows(row["domain_id"], with_record=True):
            write_metadata(folder, snap["name"], json.loads(snap["record"]))
            written += 1
    typer.echo(f"Wrote {written} metadata files")


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="projections")
