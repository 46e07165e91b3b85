"""The per-domain aggregate: the snapshot tree's invariants and the operations log.

One ``DomainLedger`` per Xen domain owns: unique snapshot names, the parent of each
snapshot, the current snapshot, and at most one operation in flight. Event methods
(decorated with ``@event``) only change state; they run again on every replay, so
no side effect ever happens here. Checks happen in the undecorated methods first.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from ledger.errors import InvalidRequest, OperationInFlight
from ledger.names import check_snapshot_name
from ledger.owner import ALIVE, GONE, REMOTE, Owner, describe, owner_state

#: Namespace of the aggregate ids: uuid5(NAMESPACE, "xlsnap:domain:" + key).
DOMAIN_NAMESPACE = uuid5(NAMESPACE_URL, "https://xlsnap.invalid/domain")

Record = dict[str, Any]
Actor = dict[str, Any]


def domain_ledger_id(domain_key: str) -> UUID:
    """The aggregate id for a domain, from its uuid (or its name when it has none)."""
    return uuid5(DOMAIN_NAMESPACE, domain_key)


class DomainLedger(Aggregate):
    """Everything the ledger knows about one domain's snapshots."""

    @staticmethod
    def create_id(domain_key: str, domain_name: str, domain_uuid: str, actor: Actor) -> UUID:
        return domain_ledger_id(domain_key)

    @event("Registered")
    def __init__(self, domain_key: str, domain_name: str, domain_uuid: str, actor: Actor) -> None:
        self.domain_key = domain_key
        self.domain_name = domain_name
        self.domain_uuid = domain_uuid
        self.entries: dict[str, Record] = {}
        self.current: str | None = None
        self.in_flight: Record | None = None

    # ---- queries -------------------------------------------------------------

    def entry(self, name: str) -> Record:
        """The record of snapshot ``name``; ``InvalidRequest`` if unknown."""
        try:
            return self.entries[name]
        except KeyError:
            raise InvalidRequest(
                f"domain {self.domain_name!r} has no snapshot named {name!r}"
            ) from None

    def children(self, name: str | None) -> list[str]:
        """Names of the snapshots whose parent is ``name`` (roots for ``None``)."""
        return [n for n, r in self.entries.items() if r["parent"] == name]

    # ---- operations ----------------------------------------------------------

    def check_idle(self) -> None:
        """Raise ``OperationInFlight`` when an operation has started and not finished.

        The message says "busy" while the owning process runs, and "run recover"
        only when it is gone (or, on another host, cannot be checked: ``--force``).
        """
        if self.in_flight is not None:
            op = self.in_flight
            actor = op.get("actor", {})
            owner = op.get("owner")
            state = owner_state(owner)
            what = f"{op['kind']} {op.get('snapshot_name')!r}"
            if op.get("recovery"):
                what = f"recovery of {what}"
            if state in (ALIVE, REMOTE):
                assert owner is not None
                hint = ("try again when it has finished" if state == ALIVE else
                        f"if that process is gone, run 'xlsnap recover --force "
                        f"{self.domain_name}'")
                message = (f"domain {self.domain_name!r} is busy: {what} "
                           f"{describe(owner, actor.get('user'))} (operation "
                           f"{op['operation_id']} in flight); {hint}")
            else:
                gone = ("its process is gone: run" if state == GONE
                        else "if its process is gone, run")
                message = (f"domain {self.domain_name!r} has operation {op['operation_id']} "
                           f"({what}) in flight, started by {actor.get('user')} on "
                           f"{actor.get('host')} at {op['started_at']}; {gone} "
                           f"'xlsnap recover {self.domain_name}'")
            raise OperationInFlight(message, op)

    def begin(
        self, operation_id: str, kind: str, snapshot_name: str | None, actor: Actor,
        details: Record, owner: Owner | None = None,
    ) -> None:
        """Start an operation owned by process ``owner``; refuses while another is in flight."""
        self.check_idle()
        started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self._operation_started(operation_id, kind, snapshot_name, actor, details, started_at,
                                owner)

    @event("OperationStarted")
    def _operation_started(
        self, operation_id: str, kind: str, snapshot_name: str | None, actor: Actor,
        details: Record, started_at: str, owner: Owner | None = None,
    ) -> None:
        # ``owner`` is absent from events recorded before owners were: None then.
        self.in_flight = {
            "operation_id": operation_id,
            "kind": kind,
            "snapshot_name": snapshot_name,
            "actor": actor,
            "started_at": started_at,
            "details": details,
            "steps": {},
            "owner": owner,
        }

    def _require_operation(self, operation_id: str) -> Record:
        if self.in_flight is None or self.in_flight["operation_id"] != operation_id:
            raise InvalidRequest(f"operation {operation_id} is not in flight")
        return self.in_flight

    def step_started(
        self, operation_id: str, step: int, phase: str, action: str, target: str,
        argv: list[str], actor: Actor,
    ) -> None:
        """Record the intent to run one side effect (``phase`` is do or undo)."""
        self._require_operation(operation_id)
        self._step_started(operation_id, step, phase, action, target, argv, actor)

    @event("StepStarted")
    def _step_started(
        self, operation_id: str, step: int, phase: str, action: str, target: str,
        argv: list[str], actor: Actor,
    ) -> None:
        assert self.in_flight is not None
        entry = self.in_flight["steps"].setdefault(str(step), {"action": action,
                                                               "target": target})
        entry[phase] = "started"

    def step_finished(
        self, operation_id: str, step: int, phase: str, ok: bool, result: Record,
        actor: Actor,
    ) -> None:
        """Record the outcome of a side effect whose intent was recorded."""
        self._require_operation(operation_id)
        self._step_finished(operation_id, step, phase, ok, result, actor)

    @event("StepFinished")
    def _step_finished(
        self, operation_id: str, step: int, phase: str, ok: bool, result: Record,
        actor: Actor,
    ) -> None:
        assert self.in_flight is not None
        entry = self.in_flight["steps"].setdefault(str(step), {})
        entry[phase] = "done" if ok else "failed"

    def step_state(self, step: int, phase: str) -> str | None:
        """``started``, ``done``, ``failed`` or None for a step of the operation in flight."""
        if self.in_flight is None:
            return None
        return self.in_flight["steps"].get(str(step), {}).get(phase)

    def decide_recovery(
        self, operation_id: str, decision: str, evidence: Record, actor: Actor,
        owner: Owner | None = None,
    ) -> None:
        """Record what recovery found for each step and whether it goes forward or back;
        the recovering process ``owner`` owns the operation from then on."""
        self._require_operation(operation_id)
        self._recovery_decided(operation_id, decision, evidence, actor, owner)

    @event("RecoveryDecided")
    def _recovery_decided(
        self, operation_id: str, decision: str, evidence: Record, actor: Actor,
        owner: Owner | None = None,
    ) -> None:
        assert self.in_flight is not None
        self.in_flight["recovery"] = decision
        if owner is not None:
            self.in_flight["owner"] = owner
            self.in_flight["actor"] = actor

    def finish(self, operation_id: str, outcome: str, message: str, actor: Actor) -> None:
        """Close the operation in flight: completed, compensated or failed."""
        self._require_operation(operation_id)
        self._operation_finished(operation_id, outcome, message, actor)

    @event("OperationFinished")
    def _operation_finished(
        self, operation_id: str, outcome: str, message: str, actor: Actor
    ) -> None:
        self.in_flight = None

    # ---- snapshot facts ------------------------------------------------------

    def check_new_name(self, name: str) -> None:
        """Raise ``InvalidRequest`` unless ``name`` is valid and not yet taken."""
        check_snapshot_name(name)
        if name in self.entries:
            raise InvalidRequest(
                f"domain {self.domain_name!r} already has a snapshot named {name!r}"
            )

    def record_taken(self, operation_id: str, name: str, record: Record, actor: Actor) -> None:
        """Record a snapshot whose side effects all succeeded; it becomes current."""
        self._require_operation(operation_id)
        self.check_new_name(name)
        self._snapshot_taken(operation_id, name, self.current, record, actor)

    @event("SnapshotTaken")
    def _snapshot_taken(
        self, operation_id: str, name: str, parent: str | None, record: Record, actor: Actor
    ) -> None:
        self.entries[name] = {"parent": parent, "record": record, "complete": True,
                              "taken_on": actor.get("host") if isinstance(actor, dict) else None}
        self.current = name

    def record_reverted(self, operation_id: str, name: str, actor: Actor) -> None:
        """Record that the domain's disks were reverted to snapshot ``name``."""
        self._require_operation(operation_id)
        self.entry(name)
        self._reverted(operation_id, name, actor)

    @event("RevertedToSnapshot")
    def _reverted(self, operation_id: str, name: str, actor: Actor) -> None:
        self.current = name

    def record_removed(self, operation_id: str, name: str, actor: Actor) -> None:
        """Record a deleted snapshot: its children get its parent, so may "current"."""
        self._require_operation(operation_id)
        self.entry(name)
        self._snapshot_deleted(operation_id, name, actor)

    @event("SnapshotDeleted")
    def _snapshot_deleted(self, operation_id: str, name: str, actor: Actor) -> None:
        parent = self.entries[name]["parent"]
        for child in self.children(name):
            self.entries[child]["parent"] = parent
        del self.entries[name]
        if self.current == name:
            self.current = parent

    def record_disks_removed(
        self, operation_id: str, name: str, devices: list[str], actor: Actor
    ) -> None:
        """Record a delete that removed only some disks' state: the snapshot is incomplete."""
        self._require_operation(operation_id)
        self.entry(name)
        self._disks_removed(operation_id, name, devices, actor)

    @event("SnapshotDisksRemoved")
    def _disks_removed(
        self, operation_id: str, name: str, devices: list[str], actor: Actor
    ) -> None:
        entry = self.entries[name]
        entry["complete"] = False
        entry["removed_devices"] = sorted(set(entry.get("removed_devices", [])) | set(devices))

    # ---- the operator's marks: current without a revert, holds -----------------

    def record_marked_current(self, operation_id: str, name: str, actor: Actor) -> None:
        """Record ``name`` as current without touching disks (virsh's snapshot-current)."""
        self._require_operation(operation_id)
        self.entry(name)
        self._current_marked(operation_id, name, actor)

    @event("CurrentMarked")
    def _current_marked(self, operation_id: str, name: str, actor: Actor) -> None:
        self.current = name

    def holds(self, name: str) -> list[str]:
        """The hold tags on snapshot ``name`` (ZFS-style: each tag keeps it from deletion)."""
        return list(self.entry(name).get("holds", []))

    def check_not_held(self, name: str, what: str = "deleted") -> None:
        """Raise ``InvalidRequest`` naming the holds when ``name`` has any."""
        holds = self.holds(name)
        if holds:
            raise InvalidRequest(
                f"snapshot {name!r} is held ({', '.join(holds)}) and cannot be {what}; "
                f"'xlsnap snapshot-release {self.domain_name} {name} TAG' first"
            )

    def record_held(self, operation_id: str, name: str, tag: str, actor: Actor) -> None:
        """Place hold ``tag`` on snapshot ``name``; a tag already there is refused."""
        self._require_operation(operation_id)
        if tag in self.holds(name):
            raise InvalidRequest(f"snapshot {name!r} already has a hold {tag!r}")
        self._hold_placed(operation_id, name, tag, actor)

    @event("HoldPlaced")
    def _hold_placed(self, operation_id: str, name: str, tag: str, actor: Actor) -> None:
        entry = self.entries[name]
        entry["holds"] = [*entry.get("holds", []), tag]

    def record_released(self, operation_id: str, name: str, tag: str, actor: Actor) -> None:
        """Release hold ``tag`` of snapshot ``name``; a tag not there is refused."""
        self._require_operation(operation_id)
        if tag not in self.holds(name):
            raise InvalidRequest(f"snapshot {name!r} has no hold {tag!r}")
        self._hold_released(operation_id, name, tag, actor)

    @event("HoldReleased")
    def _hold_released(self, operation_id: str, name: str, tag: str, actor: Actor) -> None:
        entry = self.entries[name]
        entry["holds"] = [t for t in entry.get("holds", []) if t != tag]

    # ---- edits: a new name, a new description ---------------------------------

    def record_edited(self, operation_id: str, name: str, new_name: str, record: Record,
                      actor: Actor) -> None:
        """Record snapshot ``name``'s new name (its children and "current" follow) and
        record; refused while it is held (a hold names a snapshot)."""
        self._require_operation(operation_id)
        self.entry(name)
        if new_name != name:
            self.check_new_name(new_name)
            self.check_not_held(name, "renamed")
        self._snapshot_edited(operation_id, name, new_name, record, actor)

    @event("SnapshotEdited")
    def _snapshot_edited(self, operation_id: str, name: str, new_name: str, record: Record,
                         actor: Actor) -> None:
        self.entries = {(new_name if k == name else k): v for k, v in self.entries.items()}
        self.entries[new_name]["record"] = record
        for entry in self.entries.values():
            if entry["parent"] == name:
                entry["parent"] = new_name
        if self.current == name:
            self.current = new_name

    # ---- access ----------------------------------------------------------------

    @event("AccessRefused")
    def record_refused(self, command: str, right: str, reason: str, actor: Actor) -> None:
        """xlsnapd refused ``command``: the actor lacks ``right`` (nothing else changes)."""
