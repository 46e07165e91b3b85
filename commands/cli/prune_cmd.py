"""``xlsnap prune``: delete what a retention policy does not keep (borg prune's rules)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from commands.cli.main import services
from commands.errors import UsageError


def prune(
    ctx: typer.Context,
    domain: Annotated[str | None, typer.Argument(help="Domain name.")] = None,
    every: Annotated[bool, typer.Option(
        "--all", help="Every domain the ledger knows; one that fails is reported, the "
                      "others go on; the exit code is the worst domain's.")] = False,
    keep_last: Annotated[int, typer.Option("--keep-last", min=0, help="The N newest.")] = 0,
    keep_hourly: Annotated[int, typer.Option("--keep-hourly", min=0,
                                             help="The newest of each of N hours.")] = 0,
    keep_daily: Annotated[int, typer.Option("--keep-daily", min=0,
                                            help="The newest of each of N days.")] = 0,
    keep_weekly: Annotated[int, typer.Option("--keep-weekly", min=0,
                                             help="The newest of each of N ISO weeks.")] = 0,
    keep_monthly: Annotated[int, typer.Option("--keep-monthly", min=0,
                                              help="The newest of each of N months.")] = 0,
    keep_yearly: Annotated[int, typer.Option("--keep-yearly", min=0,
                                             help="The newest of each of N years.")] = 0,
    keep_within: Annotated[str | None, typer.Option(
        "--keep-within", help="Everything younger than this: 2d, 12h, 1w.")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Print what would be kept and deleted; change nothing.")] = False,
    show: Annotated[bool, typer.Option("--list", help="Print each decision.")] = False,
) -> None:
    """Delete DOMAIN's snapshots that no keep rule keeps, as borg prune does.

    Rules (in borg's order): --keep-within, --keep-last, --keep-hourly, --keep-daily,
    --keep-weekly, --keep-monthly, --keep-yearly; each period rule keeps the newest
    snapshot of each of the N latest periods (local time) not kept by an earlier rule.
    Never deleted: the current snapshot, a held one, an external one. The policy and
    each decision are recorded with the one prune operation whose steps delete each
    snapshot whole (every disk's tag, memory image, metadata file); a crash leaves it
    for 'xlsnap recover', which finishes it. Ctrl-C stops after the snapshot in hand
    and says how many were deleted (exit 130). At least one rule is required.
    --dry-run prints exactly what a real run would do.

    \b
    Examples:
      xlsnap prune --keep-daily 7 --keep-weekly 4 --dry-run web
      xlsnap prune --keep-within 2d --keep-last 10 --list web
      xlsnap prune --all --keep-daily 7
    """
    from commands.cli.prune_all import echo_decisions, prune_every_domain
    from commands.handlers.prune import check_policy, plan_prune, run_prune
    from commands.planning.retention import Policy
    from commands.cli.timespec import parse_duration

    within = parse_duration(keep_within) if keep_within is not None else 0
    policy = Policy(within, keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly,
                    keep_yearly)
    if (domain is None) == (not every):
        raise UsageError("give a DOMAIN or --all (not both)")
    check_policy(policy)
    svc = services(ctx, read_only=dry_run)
    if every:
        raise typer.Exit(prune_every_domain(svc, policy, dry_run, show))
    assert domain is not None
    decisions = plan_prune(svc, domain, policy)
    if dry_run or show:
        echo_decisions(decisions, dry_run)
    drops = sum(not d.keep for d in decisions)
    if dry_run:
        typer.echo(f"dry run: {drops} of {len(decisions)} snapshots would be deleted",
                   err=True)
        return
    deleted = run_prune(svc, domain, policy, decisions,
                        lambda m: print(f"xlsnap: {m}", file=sys.stderr) if show else None)
    typer.echo(f"Pruned domain {domain}: {deleted} deleted, {len(decisions) - deleted} kept")


def register(app: typer.Typer) -> None:
    app.command("prune")(prune)


