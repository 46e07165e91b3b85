"""``snapshot-delete --children`` / ``--children-only``: a snapshot's whole subtree.

Every snapshot below it (and itself, with ``--children``) is deleted as its own
operation, the deepest first, so each delete sees a leaf where it can. Everything
that would refuse one of them (a hold) is checked before the first.
"""

from __future__ import annotations

from commands.handlers.delete import delete_snapshot
from commands.handlers.messages import DeleteSnapshot
from commands.bootstrap import Services
from ledger.domain import DomainLedger


def subtree(ledger: DomainLedger, name: str) -> list[str]:
    """Names below ``name`` in the tree, deepest first (siblings by name)."""
    depth: dict[str, int] = {}
    stack = [(child, 1) for child in ledger.children(name)]
    while stack:
        child, level = stack.pop()
        depth[child] = level
        stack.extend((c, level + 1) for c in ledger.children(child))
    return sorted(depth, key=lambda n: (-depth[n], n))


def delete_subtree(cmd: DeleteSnapshot, svc: Services, include_self: bool) -> tuple[list[str], int]:
    """Delete the snapshots below ``cmd.name`` (and it, with ``include_self``); returns the
    names deleted, in order, and the bytes freed."""
    ledger = svc.idle_ledger_for(svc.resolve(cmd.domain).domain)
    ledger.entry(cmd.name)
    names = subtree(ledger, cmd.name) + ([cmd.name] if include_self else [])
    for name in names:
        ledger.check_not_held(name)
    freed = 0
    for name in names:
        freed += delete_snapshot(cmd._replace(name=name), svc) or 0
    return names, freed
