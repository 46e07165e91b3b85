"""``xlsnap export``: the events, with positions and Merkle leaf hashes, for a SIEM."""

# No 'from __future__ import annotations': typer would compile every annotation string
# of every command at each start-up.

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from commands.cli.main import services
from commands.errors import UsageError
from commands.cli.timespec import parse_range
from projections.timeline import position_range

FORMATS = ("jsonl", "msgpack")


def export(
    ctx: typer.Context,
    fmt: Annotated[str, typer.Option("--format", help="jsonl or msgpack.")] = "jsonl",
    since: Annotated[str | None, typer.Option(
        "--since", help="From this time: ISO 8601, or ago like 2h, 3d.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Up to this time.")] = None,
    out: Annotated[str, typer.Option("--out", "-o", help="File to write, or - for stdout.")]
    = "-",
) -> None:
    """Write the recorded events for a SIEM or an investigator.

    Each record holds the event as stored (ids, version, topic, state bytes), its
    position in the log and its Merkle leaf hash, and the decoded fields 'history
    --json' shows; the header carries every tree head recorded. 'xlsnap verify
    --export FILE' checks an export against those heads without the database.

    \b
    Examples:
      xlsnap export --format jsonl --since 1d > last-day.jsonl
      xlsnap export --format msgpack --out ledger.msgpack
    """
    from projections.export import export_mapper, write_export

    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}: use {' or '.join(FORMATS)}")
    first_time, last_time = parse_range(since, until)
    svc = services(ctx, read_only=True)
    svc.sync()
    db = svc.view.db
    first, last = position_range(db, first_time, last_time)
    names = {str(r["domain_id"]): r["name"] for r in svc.view.domains()}
    if out == "-":
        write_export(sys.stdout.buffer, fmt, db, export_mapper(), names, first, last)
        sys.stdout.flush()
        return
    target = Path(out).absolute()
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as handle:
            count = write_export(handle, fmt, db, export_mapper(), names, first, last)
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UsageError(f"cannot write {out}: {exc.strerror}") from None
    typer.echo(f"Exported {count} events (positions {first}..{last}) to {out}", err=True)


def register(app: typer.Typer) -> None:
    app.command("export")(export)
