"""``xlsnap snapshot-list``: short table, ``-l`` libxl-json, ``--tree``, ``--json``."""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated, Any

import typer

from commands.cli.main import services
from commands.errors import UsageError
from commands.lookup import domain_id_for
from commands.metadata import render_libxl_json
from projections.trees import draw_tree, tree_json


def snapshot_list(
    ctx: typer.Context,
    domain: Annotated[str, typer.Argument(help="Domain name.")],
    name: Annotated[str | None, typer.Argument(help="One snapshot (with -l).")] = None,
    long: Annotated[bool, typer.Option("-l", "--long",
                                       help="Full information as libxl-json.")] = False,
    tree: Annotated[bool, typer.Option("--tree", help="Draw the snapshot tree.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON.")] = False,
) -> None:
    """List DOMAIN's snapshots: name, creation time, domain state, disk-only, current.

    \b
    Examples:
      xlsnap snapshot-list web
      xlsnap snapshot-list --tree web
      xlsnap snapshot-list -l web before-upgrade
    """
    svc = services(ctx)
    svc.sync()
    domain_id = domain_id_for(svc, domain)
    row = svc.view.domain(domain_id) if domain_id else None
    current = row["current"] if row else None
    if row and row["in_flight"]:
        op = json.loads(row["in_flight"])
        print(f"xlsnap: warning: {_in_flight_note(op, domain)}", file=sys.stderr)
    if name is not None and not long:
        raise UsageError("a snapshot NAME goes with -l")
    if long:
        _print_long(svc, domain_id, domain, name)
        return
    rows = svc.view.snapshot_rows(domain_id) if domain_id else []
    if tree:
        if as_json:
            typer.echo(json.dumps(tree_json(rows, current), indent=2))
        else:
            typer.echo("\n".join(draw_tree(rows, current)) if rows else "(no snapshots)")
        return
    if as_json:
        typer.echo(json.dumps([short_row(r, current) for r in rows], indent=2))
        return
    typer.echo(short_table(rows, current))


def short_row(row: Any, current: str | None) -> dict[str, Any]:
    return {"name": row["name"], "parent": row["parent"], "creation_time": row["created_at"],
            "state": row["state"], "disk_only": bool(row["disk_only"]), "type": row["kind"],
            "current": row["name"] == current, "complete": bool(row["complete"])}


def short_table(rows: list[Any], current: str | None) -> str:
    width = max([len("Name")] + [len(r["name"]) for r in rows])
    lines = [f"  {'Name':<{width}}  {'Creation Time':<19}  {'State':<8}  {'Disk-only':<9}  Type"]
    for r in rows:
        mark = "*" if r["name"] == current else " "
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["created_at"]))
        kind = r["kind"] + ("" if r["complete"] else " (incomplete)")
        disk_only = "yes" if r["disk_only"] else "no"
        lines.append(f"{mark} {r['name']:<{width}}  {created}  {r['state']:<8}  "
                     f"{disk_only:<9}  {kind}")
    return "\n".join(lines)


def _print_long(svc: Any, domain_id: str | None, domain: str, name: str | None) -> None:
    if name is not None:
        record = svc.view.record(domain_id, name) if domain_id else None
        if record is None:
            raise UsageError(f"domain {domain!r} has no snapshot named {name!r}")
        typer.echo(render_libxl_json(record), nl=False)
        return
    records = svc.view.records(domain_id) if domain_id else []
    typer.echo(render_libxl_json(records), nl=False)


def register(app: typer.Typer) -> None:
    app.command("snapshot-list")(snapshot_list)


def _in_flight_note(op: dict[str, Any], domain: str) -> str:
    """"busy" while the operation's process runs, else how to recover it."""
    from ledger.owner import ALIVE, GONE, REMOTE, describe, owner_state

    what = f"operation {op['operation_id']} ({op['kind']} {op.get('snapshot_name')!r})"
    owner = op.get("owner")
    state = owner_state(owner)
    if state == ALIVE:
        return f"busy: {what} {describe(owner, op.get('actor', {}).get('user'))}"
    if state == REMOTE:
        return (f"{what} is in flight, {describe(owner, op.get('actor', {}).get('user'))}; "
                f"if that process is gone, run 'xlsnap recover --force {domain}'")
    gone = "its process is gone: run" if state == GONE else "if its process is gone, run"
    return f"{what} is in flight; {gone} 'xlsnap recover {domain}'"
