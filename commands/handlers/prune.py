"""``prune``: delete the snapshots a retention policy does not keep (borg prune's rules).

The policy and every decision (which rule kept a snapshot, or why it was spared) are
recorded first, as a ``prune`` operation; each deletion is then a delete operation of
its own, carrying the rule in its reason, so a crash leaves at most one delete in
flight (``recover`` finishes it) and running prune again carries on. Never deleted:
the current snapshot, a held one, an external one (not deletable yet).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from commands.handlers.delete import delete_snapshot
from commands.errors import Interrupted, UsageError, XlsnapError
from commands.handlers.messages import DeleteSnapshot
from commands.handlers.marks import record_only
from commands.planning.retention import Candidate, Policy, decide
from commands.bootstrap import Services


class Decision(NamedTuple):
    name: str
    keep: bool
    reason: str


def plan_prune(svc: Services, domain: str, policy: Policy) -> list[Decision]:
    """What ``policy`` keeps and drops of ``domain``'s snapshots, oldest first."""
    if policy.empty():
        raise UsageError("no keep rule given: prune would delete every snapshot but the "
                         "current one; give --keep-last, --keep-daily, ... ")
    ledger = svc.ledger_for(svc.resolve(domain).domain)
    ledger.check_idle()
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
            out.append(Decision(c.name, True, "external: not deletable yet"))
        else:
            out.append(Decision(c.name, False, "no rule keeps it"))
    return out


def run_prune(svc: Services, domain: str, policy: Policy,
              decisions: list[Decision], say: Any) -> int:
    """Record the decisions, then delete each dropped snapshot; returns how many.

    Ctrl-C stops after the snapshot in hand (its delete is whole or undone) and says
    how far it got.
    """
    drops = [d for d in decisions if not d.keep]
    if not drops:
        return 0
    ledger = svc.ledger_for(svc.resolve(domain).domain)
    record_only(svc, ledger, "prune", None,
                {"domain": domain, "policy": policy._asdict(),
                 "decisions": [d._asdict() for d in decisions]},
                lambda lg, op: None, message=f"{len(drops)} to delete")
    done = 0
    try:
        for d in drops:
            delete_snapshot(DeleteSnapshot(domain, d.name,
                                           reason=f"prune ({policy.describe()}): {d.reason}"),
                            svc)
            done += 1
            say(f"deleted {d.name}")
    except KeyboardInterrupt:
        raise Interrupted(f"prune interrupted: {done} of {len(drops)} snapshots deleted; "
                          "run it again to go on") from None
    except XlsnapError as exc:
        if not exc.message.startswith("interrupted"):
            raise
        raise Interrupted(f"prune interrupted at {drops[done].name} (not deleted): {done} of "
                          f"{len(drops)} snapshots deleted; run it again to go on") from None
    return done
