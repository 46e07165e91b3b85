"""What changed in a domain's snapshot tree between two log positions, and who did it.

The two ends are replayed (``projections.replay``); the events in between name each
change and its actor. A snapshot keeps its identity (the position of the event that
created it) across renames, so a rename is a snapshot present at both ends under
two names; the ledger records no rename yet, so none appear today.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

from ledger.app import LedgerApp
from projections.log_reader import decode, domain_rows
from projections.replay import PastState, replay_domain
from projections.timeline import operations_at

_CHANGES = {"SnapshotTaken": "created", "SnapshotDeleted": "deleted",
            "RevertedToSnapshot": "reverted", "SnapshotDisksRemoved": "disks-removed",
            "CurrentMarked": "marked-current", "HoldPlaced": "held",
            "HoldReleased": "released"}


@dataclass
class Diff:
    domain_id: str
    first: int
    last: int
    changes: list[dict[str, Any]] = field(default_factory=list)
    current: tuple[str | None, str | None] = (None, None)
    snapshots: tuple[list[str], list[str]] = ([], [])
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"domain_id": self.domain_id, "from_position": self.first,
                "to_position": self.last, "changes": self.changes,
                "current": {"from": self.current[0], "to": self.current[1]},
                "snapshots": {"from": self.snapshots[0], "to": self.snapshots[1]}}


def diff_domain(app: LedgerApp, db: Any, domain_id: str, first: int, last: int
                ) -> Diff:
    """Changes to ``domain_id`` by the events after position ``first`` up to ``last``."""
    before = replay_domain(app, db, domain_id, first)
    after = replay_domain(app, db, domain_id, last)
    try:
        diff = Diff(domain_id, first, last, warnings=before.warnings + after.warnings)
        kinds: dict[str, str | None] = {}
        for row in domain_rows(db, domain_id, before.version, last):
            position, event = decode(app, row)
            fields = vars(event)
            name = type(event).__qualname__.split(".")[-1]
            if name == "OperationStarted":
                kinds[fields["operation_id"]] = fields.get("kind")
            change = _CHANGES.get(name)
            if change is not None:
                diff.changes.append(_change(change, position, event, fields, kinds))
        _fill_kinds(db, diff.changes)
        diff.changes += _renames(before, after)
        diff.current = (before.current, after.current)
        diff.snapshots = ([r["name"] for r in before.rows()], [r["name"] for r in after.rows()])
        return diff
    finally:
        before.close()
        after.close()


def _change(change: str, position: int, event: Any, fields: dict[str, Any],
            kinds: dict[str, str | None]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "change": change, "name": fields.get("name"), "position": position,
        "time": event.timestamp.timestamp(), "operation_id": fields.get("operation_id"),
        "operation_kind": kinds.get(fields.get("operation_id", "")),
        "actor": fields.get("actor")}
    if change == "created":
        out["parent"] = fields.get("parent")
    if change == "disks-removed":
        out["devices"] = fields.get("devices")
    if change in ("held", "released"):
        out["tag"] = fields.get("tag")
    return out


def _fill_kinds(db: Any, changes: list[dict[str, Any]]) -> None:
    """Kinds of operations that started before the range, from the time index if any."""
    missing = [c["position"] for c in changes if c["operation_kind"] is None]
    if not missing:
        return
    try:
        known = operations_at(db, missing)
    except sqlite3.OperationalError:  # the log alone: no index to ask
        return
    for change in changes:
        if change["operation_kind"] is None:
            change["operation_kind"] = known.get(change["position"], (None, None))[1]


def _renames(before: PastState, after: PastState) -> list[dict[str, Any]]:
    names = {r["position"]: r["name"] for r in before.rows()}
    return [{"change": "renamed", "name": r["name"], "old_name": names[r["position"]],
             "position": None, "time": None, "operation_id": None, "actor": None}
            for r in after.rows()
            if r["position"] in names and names[r["position"]] != r["name"]]
