"""``xlsnap history``: recorded events, oldest first, filtered through the time index."""

# No 'from __future__ import annotations': typer would compile every annotation string
# of every command at each start-up.

import json
import sys
from typing import Annotated, Any

import typer

from commands.cli.main import services
from commands.errors import UsageError
from commands.handlers.find_domain import domain_id_for
from commands.cli.timespec import parse_range, show_time
from ledger.names import OPERATION_KINDS
from projections.history import actor_label, describe, history_row
from projections.log_reader import events_at
from projections.timeline import operations_at, select_positions


def history(
    ctx: typer.Context,
    domain: Annotated[str | None, typer.Argument(help="Only this domain's events.")] = None,
    since: Annotated[str | None, typer.Option(
        "--since", help="From this time: ISO 8601, or ago like 2h, 3d, 1w.")] = None,
    until: Annotated[str | None, typer.Option(
        "--until", help="Up to this time (same forms as --since).")] = None,
    actor: Annotated[str | None, typer.Option(
        "--actor", help="Only events by this user (user name, SUDO_USER or uid).")] = None,
    kind: Annotated[str | None, typer.Option(
        "--kind", help="Only events of operations of this kind: create, revert, delete "
        "or adopt.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON.")] = False,
    as_jsonl: Annotated[bool, typer.Option("--jsonl", help="One JSON object per line.")]
    = False,
) -> None:
    """Show recorded events: time, actor, operation, what ran and its outcome.

    Time filters follow the ledger's commit order: --since T keeps the events
    committed after the log's clock (the latest time any earlier event was stamped
    with) reached T, --until T the longest prefix of the log stamped no later than T,
    as 'xlsnap replay --as-of' and 'xlsnap diff' read them.

    \b
    Examples:
      xlsnap history web
      xlsnap history --since 2h --actor alice
      xlsnap history --since 2025-01-31T09:00 --until 2025-01-31T18:00 --kind revert --jsonl
    """
    if as_json and as_jsonl:
        raise UsageError("--json and --jsonl do not go together")
    if kind is not None and kind not in OPERATION_KINDS:
        raise UsageError(f"unknown --kind {kind!r}: one of {', '.join(OPERATION_KINDS)}")
    first, last = parse_range(since, until)
    svc = services(ctx, read_only=True)
    svc.sync()
    db = svc.view.db
    names = {str(r["domain_id"]): r["name"] for r in svc.view.domains()}
    domain_id = domain_id_for(svc, domain) if domain is not None else None
    if domain is not None and domain_id is None:
        positions: list[int] = []
    else:
        positions = select_positions(db, first, last, domain_id, actor, kind)
    operations = operations_at(db, positions)
    rows = (_row(p, e, names, operations) for p, e in events_at(svc.app, db, positions))
    if as_json:
        typer.echo(json.dumps(list(rows), indent=2, default=str))
    elif as_jsonl:
        for row in rows:
            sys.stdout.write(json.dumps(row, default=str) + "\n")
    else:
        for row in rows:
            typer.echo(_line(row))


def _row(position: int, event: Any, names: dict[str, str],
         operations: dict[int, tuple[str | None, str | None]]) -> dict[str, Any]:
    row = history_row(position, event, names)
    operation_id, kind = operations.get(position, (None, None))
    row["operation_id"] = row["operation_id"] or operation_id
    row["operation_kind"] = kind
    return row


def _line(row: dict[str, Any]) -> str:
    op = (row["operation_id"] or "")[:8]
    return (f"{show_time(row['time'])}  {row['domain']:<12} {actor_label(row['actor'])}  "
            f"{op:<8}  {row['event']:<18} {describe(row)}")


def register(app: typer.Typer) -> None:
    app.command("history")(history)
