"""``prune``: delete the snapshots a retention policy does not keep (borg prune's rules).

The policy and every decision (which rule kept a snapshot, or why it was spared) are
recorded with the ``prune`` operation that deletes the rest, one snapshot after the
other (``commands.handlers.prune_run``). Never deleted: the current snapshot, a held one, an
external one (its merge is snapshot-delete's, one snapshot at a time).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from commands.errors import UsageError
from commands.handlers.prune_run import delete_in_one_operation
from commands.planning.retention import Candidate, Policy, decide
from commands.bootstrap import Services


class Decision(NamedTuple):
    name: str
    keep: bool
    reason: str


def check_policy(policy: Policy) -> None:
    """Refuse a policy without a keep rule (it would delete all but the current one)."""
    if policy.empty():
        raise UsageError("no keep rule given: prune would delete every snapshot but the "
                         "current one; give --keep-last, --keep-daily, ... ")


def plan_prune(svc: Services, domain: str, policy: Policy) -> list[Decision]:
    """What ``policy`` keeps and drops of ``domain``'s snapshots, oldest first."""
    check_policy(policy)
    ledger = svc.idle_ledger_for(svc.resolve(domain).domain)
    entries = ledger.entries
    candidates = [Candidate(n, float(e["record"].get("creation_time") or 0), k)
                  for k, (n, e) in enumerate(entries.items())]
    if not candidates:
        return []
    kept = decide(candidates, policy)
    if not kept:
        raise UsageError(f"the rules ({policy.describe()}) keep no snapshot of domain "
                         f"{domain!r}: nothing but the current one would be left; refused")
    out = []
    for c in sorted(candidates, key=lambda c: (c.created_at, c.order)):
        entry = entries[c.name]
        if c.name in kept:
            out.append(Decision(c.name, True, kept[c.name]))
        elif c.name == ledger.current:
            out.append(Decision(c.name, True, "current"))
        elif entry.get("holds"):
            out.append(Decision(c.name, True, f"held ({', '.join(entry['holds'])})"))
        elif entry["record"].get("type", "internal") != "internal":
            out.append(Decision(c.name, True, "external: left to snapshot-delete"))
        else:
            out.append(Decision(c.name, False, "no rule keeps it"))
    return out


def run_prune(svc: Services, domain: str, policy: Policy,
              decisions: list[Decision], say: Callable[[str], None]) -> int:
    """Delete each dropped snapshot, as one ``prune`` operation recording the policy and
    every decision; returns how many. Ctrl-C stops after the snapshot in hand."""
    drops = [d.name for d in decisions if not d.keep]
    if not drops:
        return 0
    details = {"domain": domain, "policy": policy._asdict(),
               "decisions": [d._asdict() for d in decisions]}
    return delete_in_one_operation(svc, domain, details, drops, say)
