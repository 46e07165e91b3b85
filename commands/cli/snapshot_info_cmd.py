"""``xlsnap snapshot-info``: one snapshot on one screen."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer

from commands.cli.main import services
from commands.cli.snapshot_args import SnapshotArgument, SnapshotOption, one_name
from commands.errors import UsageError
from commands.handlers.find_domain import domain_id_for
from projections.history import actor_label
from projections.snapshot_info import snapshot_info as info_of


def snapshot_info(
    ctx: typer.Context,
    domain: Annotated[str, typer.Argument(help="Domain name.")],
    snapshot: SnapshotArgument = None,
    name_option: SnapshotOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON.")] = False,
) -> None:
    """One snapshot on one screen: parent, children, type, state, disks, memory, who, when.

    \b
    Examples:
      xlsnap snapshot-info web before-upgrade
      xlsnap snapshot-info --json -n before-upgrade web
    """
    info = snapshot_record(ctx, domain, one_name(snapshot, name_option))
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info["created_at"]))
    memory = ("-" if not info["memory_file"] and not info["memory_size"] else
              f"{info['memory_file'] or 'inside the first qcow2 disk'}"
              f" ({_size(info['memory_size'])})")
    lines = [
        ("Name", info["name"] + ("  (current)" if info["current"] else "")),
        ("Parent", info["parent"] or "-"),
        ("Children", f"{len(info['children'])}"
                     + (f": {', '.join(info['children'])}" if info["children"] else "")),
        ("Descendants", str(info["descendants"])),
        ("Type", info["type"] + ("" if info["complete"] else " (incomplete)")),
        ("State", f"{info['state']} ({info['taken']})"),
        ("Disks", ", ".join(f"{d['device']} {d['type']}" for d in info["disks"]) or "-"),
        ("Memory", memory),
        ("Created", f"{created} by {actor_label(info['created_by'])}"
                    + (" (adopted)" if info["adopted"] else "")),
        ("Description", info["description"] or "-"),
        ("Holds", ", ".join(info["holds"]) or "-"),
    ]
    if info["wrap"]:
        lines.append(("Pair", f"{info['wrap']['role']} snapshot of a wrapped command; "
                              f"its partner is {info['wrap']['partner']}"))
    typer.echo("\n".join(f"{k + ':':<13}{v}" for k, v in lines))


def snapshot_record(ctx: typer.Context, domain: str, name: str | None) -> dict[str, Any]:
    """The snapshot's summary (``projections.snapshot_info``), or exit 2 naming what is not."""
    assert name is not None
    svc = services(ctx, read_only=True)
    svc.sync()
    domain_id = domain_id_for(svc, domain)
    info = info_of(svc.view.db, domain_id, name) if domain_id else None
    if info is None:
        raise UsageError(f"domain {domain!r} has no snapshot named {name!r}")
    return info


def _size(size: int | None) -> str:
    if not size:
        return "size unknown"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)


def register(app: typer.Typer) -> None:
    app.command("snapshot-info")(snapshot_info)
