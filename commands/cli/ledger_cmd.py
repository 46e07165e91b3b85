"""``xlsnap ledger info`` and ``xlsnap ledger copy``: the ledger's database itself."""

# No 'from __future__ import annotations': typer compiles annotation strings at start-up.

import json
import os
from typing import Annotated

import typer

from commands.cli.main import services
from commands.errors import UsageError

ledger_app = typer.Typer(help="The ledger's database: where it is, and moving it.\n\n\b\n"
                         "Examples:\n  xlsnap ledger info\n"
                         "  xlsnap ledger copy --from /var/lib/xlsnap/ledger.sqlite "
                         "--to postgresql://xlsnap@db/xlsnap",
                         no_args_is_help=True)


@ledger_app.command("info")
def info(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """Which backend, where (a URL without its password), how many events and domains,
    the schema version and the last sealed tree head.

    Example:
      xlsnap ledger info --json
    """
    from ledger.storage.info import info_lines, ledger_info
    from ledger.storage.location import is_postgres

    svc = services(ctx, read_only=True)
    location = svc.settings.ledger
    if is_postgres(location):
        svc.app  # noqa: B018 - opening it reports an unreachable server or a newer schema
    elif not os.path.exists(location):
        raise UsageError(f"no ledger at {location}")
    found = ledger_info(location)
    if as_json:
        typer.echo(json.dumps(found, indent=2))
    else:
        typer.echo("\n".join(info_lines(found)))


@ledger_app.command("copy")
def copy(
    ctx: typer.Context,
    source: Annotated[str, typer.Option("--from", help="The SQLite ledger file to copy.")],
    target: Annotated[str, typer.Option("--to", help="The postgresql:// ledger to copy "
                                                     "it into.")],
) -> None:
    """Copy every event of a SQLite ledger, in order, into a PostgreSQL ledger.

    Domains the target already holds, and a ledger copied before, are refused. Into an
    empty target the tree heads travel too (seal it with the same key afterwards);
    otherwise the command says to seal the target.

    Example:
      xlsnap ledger copy --from /var/lib/xlsnap/ledger.sqlite --to postgresql://xlsnap@db/xlsnap
    """
    from commands.state.ledger_file import check_is_ledger
    from commands.bootstrap import open_services
    from commands.config.settings import Settings
    from ledger.storage.copy import copy_ledger
    from ledger.storage.location import shown

    if not os.path.isfile(source):
        raise UsageError(f"no ledger file at {source}")
    check_is_ledger(source)
    root = ctx.find_root()
    settings: Settings = root.obj
    svc = open_services(settings._replace(ledger=target))
    root.call_on_close(svc.close)
    svc.app  # noqa: B018 - creates the target's tables (or says why it cannot)
    result = copy_ledger(source, target)
    svc.sync()
    typer.echo(f"copied {result.events} events of {len(result.domains)} domain(s) "
               f"({', '.join(result.domains)}) from {source} to {shown(target)}")
    typer.echo(result.reseal)


def register(app: typer.Typer) -> None:
    app.add_typer(ledger_app, name="ledger")
