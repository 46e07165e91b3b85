"""``xlsnap snapshot-list``: short table, ``-l`` libxl-json, ``--tree``, ``--json``."""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated, Any

import typer

from commands.cli.main import services
from commands.cli.snapshot_args import one_name
from commands.errors import UsageError
from commands.handlers.find_domain import domain_id_for
from commands.state.snapshot_metadata import render_libxl_json
from projections.snapshot_filters import FilterError, Filters, select
from projections.trees import draw_tree, tree_json


def snapshot_list(
    ctx: typer.Context,
    domain: Annotated[str, typer.Argument(help="Domain name.")],
    snapshot: Annotated[str | None, typer.Argument(
        metavar="[NAME]", help="One snapshot (with -l), or -n NAME.")] = None,
    name_option: Annotated[str | None, typer.Option(
        "-n", help="One snapshot (with -l).")] = None,
    long: Annotated[bool, typer.Option("-l", "--long",
                                       help="Full information as libxl-json.")] = False,
    tree: Annotated[bool, typer.Option("--tree", help="Draw the snapshot tree.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON.")] = False,
    names_only: Annotated[bool, typer.Option("--name", help="Names only, one a line.")] = False,
    parent: Annotated[bool, typer.Option("--parent", help="Add a parent column.")] = False,
    roots: Annotated[bool, typer.Option("--roots", help="Only snapshots without a parent.")]
    = False,
    leaves: Annotated[bool, typer.Option("--leaves", help="Only snapshots without children.")]
    = False,
    no_leaves: Annotated[bool, typer.Option(
        "--no-leaves", help="Only snapshots with children.")] = False,
    start: Annotated[str | None, typer.Option(
        "--from", help="Only the children of this snapshot (itself too with --tree).")] = None,
    current_only: Annotated[bool, typer.Option(
        "--current", help="As --from, starting at the current snapshot.")] = False,
    descendants: Annotated[bool, typer.Option(
        "--descendants", help="With --from/--current: all descendants, not only children.")]
    = False,
    internal: Annotated[bool, typer.Option("--internal", help="Only internal snapshots.")]
    = False,
    external: Annotated[bool, typer.Option("--external", help="Only external snapshots.")]
    = False,
    active: Annotated[bool, typer.Option(
        "--active", help="Only snapshots of a running domain, with its memory.")] = False,
    inactive: Annotated[bool, typer.Option(
        "--inactive", help="Only snapshots of a stopped domain.")] = False,
    disk_only: Annotated[bool, typer.Option(
        "--disk-only", help="Only disk-only snapshots of a running domain.")] = False,
) -> None:
    """List DOMAIN's snapshots: name, creation time, domain state, disk-only, current.

    The filters are virsh's and combine as in virsh: --roots, --parent and --tree
    exclude each other; --from/--current list children (--descendants: all below);
    within --active/--inactive/--disk-only and within --internal/--external, a
    snapshot matching any flag given is kept.

    \b
    Examples:
      xlsnap snapshot-list web
      xlsnap snapshot-list --tree web
      xlsnap snapshot-list --leaves --name web
      xlsnap snapshot-list --from before-upgrade --descendants --parent web
      xlsnap snapshot-list -l web before-upgrade
      xlsnap snapshot-list -l -n before-upgrade web
    """
    name = one_name(snapshot, name_option, required=False)
    if name is not None and not long:
        raise UsageError("a snapshot NAME goes with -l")
    if long and tree:
        raise UsageError("-l and --tree exclude each other: -l prints records, --tree the tree")
    filters = Filters(roots, parent, tree, start, current_only, descendants, leaves,
                      no_leaves, active, inactive, disk_only, internal, external)
    try:
        filters.check()
    except FilterError as exc:
        raise UsageError(str(exc)) from None
    if long and filters != Filters() or names_only and (long or tree):
        raise UsageError("filters and --name go with the short list (not -l; --name not "
                         "with --tree)")
    svc = services(ctx, read_only=True)
    svc.sync()
    domain_id = domain_id_for(svc, domain)
    row = svc.view.domain(domain_id) if domain_id else None
    current = row["current"] if row else None
    if row and row["in_flight"]:
        op = json.loads(row["in_flight"])
        print(f"xlsnap: warning: {_in_flight_note(op, domain)}", file=sys.stderr)
    if long:
        _print_long(svc, domain_id, domain, name)
        return
    rows = svc.view.snapshot_rows(domain_id) if domain_id else []
    if filters != Filters():
        try:
            rows = select(rows, current, filters)
        except FilterError as exc:
            raise UsageError(f"domain {domain!r}: {exc}") from None
    if names_only:
        typer.echo(json.dumps([r["name"] for r in rows], indent=2) if as_json
                   else "\n".join(r["name"] for r in rows))
        return
    if tree:
        if as_json:
            typer.echo(json.dumps(tree_json(rows, current), indent=2))
        else:
            typer.echo("\n".join(draw_tree(rows, current)) if rows else "(no snapshots)")
        return
    if as_json:
        typer.echo(json.dumps([short_row(r, current) for r in rows], indent=2))
        return
    typer.echo(short_table(rows, current, with_parent=parent))


def short_row(row: Any, current: str | None) -> dict[str, Any]:
    return {"name": row["name"], "parent": row["parent"], "creation_time": row["created_at"],
            "state": row["state"], "disk_only": bool(row["disk_only"]), "type": row["kind"],
            "current": row["name"] == current, "complete": bool(row["complete"])}


def short_table(rows: list[Any], current: str | None, with_parent: bool = False) -> str:
    width = max([len("Name")] + [len(r["name"]) for r in rows])
    pwidth = max([len("Parent")] + [len(r["parent"] or "") for r in rows])
    parent_head = f"{'Parent':<{pwidth}}  " if with_parent else ""
    lines = [f"  {'Name':<{width}}  {parent_head}{'Creation Time':<19}  {'State':<8}  "
             f"{'Disk-only':<9}  Type"]
    for r in rows:
        mark = "*" if r["name"] == current else " "
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["created_at"]))
        kind = r["kind"] + ("" if r["complete"] else " (incomplete)")
        disk_only = "yes" if r["disk_only"] else "no"
        parent_cell = f"{r['parent'] or '-':<{pwidth}}  " if with_parent else ""
        lines.append(f"{mark} {r['name']:<{width}}  {parent_cell}{created}  {r['state']:<8}  "
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
