"""``xlsnap prune --all``: the policy on every domain the ledger knows, one after another.

A domain that cannot be pruned (busy with another operation, no config file, a failed
step) is reported and the others still go on; the exit code is the worst domain's.
"""

from __future__ import annotations

import sys
from typing import NamedTuple

import typer

from commands.errors import exit_code
from commands.drivers.process import DriverError
from commands.errors import Interrupted, XlsnapError
from commands.handlers.prune import Decision, plan_prune, run_prune
from commands.planning.retention import Policy
from commands.bootstrap import Services
from ledger.errors import LedgerError


class DomainResult(NamedTuple):
    """How one domain's prune went: ``code`` 0 and counts, or its error and exit code."""

    domain: str
    deleted: int
    kept: int
    code: int = 0
    error: str = ""


def prune_every_domain(svc: Services, policy: Policy, dry_run: bool, show: bool) -> int:
    """Prune each domain in the ledger in name order; prints a line each; the exit code."""
    svc.sync()
    names = [row[0] for row in svc.view.db.execute(
        "SELECT name FROM view_domains ORDER BY name").fetchall()]
    results = []
    for name in names:
        try:
            results.append(_one(svc, name, policy, dry_run, show))
        except Interrupted as exc:
            raise Interrupted(f"{name}: {exc.message}; domains after it not pruned") from None
        except (XlsnapError, LedgerError, DriverError) as exc:
            results.append(DomainResult(name, 0, 0, exit_code(exc), str(exc)))
    for r in results:
        if r.code:
            print(f"xlsnap: {r.domain}: not pruned (exit {r.code}): {r.error}", file=sys.stderr)
    failed = [r for r in results if r.code]
    verb = "would be deleted" if dry_run else "deleted"
    typer.echo(f"Pruned {len(results) - len(failed)} of {len(results)} domains: "
               f"{sum(r.deleted for r in results)} snapshots {verb}"
               + (f"; {len(failed)} not pruned: {', '.join(r.domain for r in failed)}"
                  if failed else ""))
    return max((r.code for r in failed), default=0)


def _one(svc: Services, name: str, policy: Policy, dry_run: bool, show: bool) -> DomainResult:
    decisions = plan_prune(svc, name, policy)
    drops = sum(not d.keep for d in decisions)
    if show or dry_run:
        echo_decisions(decisions, dry_run, f"{name}: ")
    if dry_run:
        deleted = drops
    else:
        deleted = run_prune(svc, name, policy, decisions, lambda m: None)
    typer.echo(f"{name}: {deleted} {'would be deleted' if dry_run else 'deleted'}, "
               f"{len(decisions) - drops} kept")
    return DomainResult(name, deleted, len(decisions) - drops)


def echo_decisions(decisions: list[Decision], dry_run: bool, prefix: str = "") -> None:
    """One line per snapshot: kept (and by which rule) or deleted (and why)."""
    for d in decisions:
        verb = "keep  " if d.keep else ("would delete" if dry_run else "delete")
        typer.echo(f"{prefix}{verb:<12}  {d.name}  ({d.reason})")
