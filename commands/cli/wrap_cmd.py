"""``xlsnap wrap``: snapshots before and after a command (snapper's pre/post pair)."""

from __future__ import annotations

from typing import Annotated

import typer

from commands.cli.main import services


def wrap(
    ctx: typer.Context,
    domain: Annotated[str, typer.Argument(help="Domain name.")],
    command: Annotated[list[str], typer.Argument(help="The command and its arguments, "
                                                      "after --.")],
    name: Annotated[str | None, typer.Option(
        "-n", "--name", help="Base name: NAME-pre and NAME-post [default: wrap-EPOCH].")]
    = None,
    disk_only: Annotated[bool, typer.Option(
        "--disk-only", help="Of a running domain, disks only (no pause).")] = False,
) -> None:
    """Take snapshot NAME-pre, run COMMAND, take NAME-post; exit with COMMAND's code.

    The post snapshot's description records the command and its exit code, and both
    records carry the pair, so 'xlsnap diff' or 'snapshot-info' show what the command
    changed. The command runs without a shell and without a timeout. If the pre
    snapshot fails, the command does not run.

    \b
    Examples:
      xlsnap wrap web -n upgrade -- ssh web apt-get -y upgrade
      xlsnap wrap --disk-only web -- /usr/local/bin/migrate-db
    """
    from commands.handlers.wrap import wrap_command

    pre, post, code = wrap_command(services(ctx), domain, name, list(command), disk_only)
    typer.echo(f"Snapshots {pre['name']} and {post['name']} of domain {domain} taken; "
               f"the command exited {code}", err=True)
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command("wrap")(wrap)
