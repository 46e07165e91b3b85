"""A prune's deletions as ONE ledger operation: each snapshot's steps, then its record."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from commands.engine.actions import StepSpec
from commands.engine.step_registry import action_of
from commands.handlers.delete import open_disks, plan_delete
from commands.drivers.qemu_img import ImageInfo, QemuImg
from commands.errors import Interrupted, OperationFailed
from commands.engine.operation import Operation
from commands.engine.operation_errors import PartlyDone
from commands.engine.signal_hold import take_interrupt
from commands.bootstrap import Services
from ledger.domain import DomainLedger


class _InfoOnce(QemuImg):
    """``qemu-img info -U`` read once per image while a prune plans (tags of the
    snapshots it keeps do not change meanwhile)."""

    def __init__(self, real: QemuImg) -> None:
        super().__init__(real.binary, real.timeout)
        self._seen: dict[tuple[str, bool], ImageInfo] = {}

    def info(self, path: str, force_share: bool = False) -> ImageInfo:
        key = (path, force_share)
        if key not in self._seen:
            self._seen[key] = super().info(path, force_share)
        return self._seen[key]


def plan_groups(svc: Services, domain: str,
                names: list[str]) -> tuple[DomainLedger, list[StepSpec], list[list[Any]]]:
    """The ledger, the whole plan, and ``[name, first step, last step]`` per snapshot."""
    target = svc.resolve(domain)
    ledger = svc.idle_ledger_for(target.domain)
    opened = open_disks(target, svc)
    qemu_img = _InfoOnce(svc.qemu_img)
    plan: list[StepSpec] = []
    groups: list[list[Any]] = []
    for name in names:
        ledger.check_not_held(name)
        _, steps = plan_delete(svc, target, ledger, name, opened, qemu_img)
        groups.append([name, len(plan) + 1, len(plan) + len(steps)])
        plan.extend(steps)
    return ledger, plan, groups


def delete_in_one_operation(svc: Services, domain: str, details: dict[str, Any],
                            names: list[str], say: Callable[[str], None]) -> int:
    """Delete ``names`` of ``domain`` as one ``prune`` operation; returns how many.

    A failed step ends the run: the snapshots before it are deleted, the one in hand
    (when one of its tags was gone already) is recorded incomplete, the rest kept.

    The plan holds every dropped snapshot's steps (its disks' tags, its memory image, its
    metadata file) in turn; ``details["groups"]`` says which steps are whose. When a
    snapshot's last step is done its ``SnapshotDeleted`` is recorded within the operation,
    so the ledger always says which snapshots are gone. Interrupts are held for the whole
    run and looked at only between two snapshots: Ctrl-C stops after the snapshot in hand.
    A crash leaves the operation in flight; ``recover`` rolls it forward (every planned
    snapshot is then deleted whole), as it does a delete.
    """
    ledger, plan, groups = plan_groups(svc, domain, names)
    op = Operation(svc.app, ledger, svc.actor, svc.tools)
    op.start("prune", None, {**details, "groups": groups}, plan)
    done = 0
    try:
        for name, first, last in groups:
            if take_interrupt():
                op.complete(lambda lg: None, message=f"interrupted: {done} of {len(groups)} "
                            "deleted, the rest kept")
                raise Interrupted(
                    f"prune interrupted: {done} of {len(groups)} snapshots deleted, the rest "
                    f"(from {name!r} on) kept; run prune again to go on")
            _delete_one(op, svc, name, plan, first, last, done, len(groups))
            done += 1
            say(f"deleted {name}")
    finally:
        svc.sync()
    op.complete(lambda lg: None, message=f"{done} deleted")
    svc.sync()
    return done


def _delete_one(op: Operation, svc: Services, name: str, plan: list[StepSpec], first: int,
                last: int, done: int, total: int) -> None:
    """Run one snapshot's steps, then record it deleted; a failure closes the operation."""
    for number in range(first, last + 1):
        spec = plan[number - 1]
        action = action_of(spec)
        ok, result = op.attempt(number, "do", spec, action.argv(spec.params, svc.tools),
                                lambda a=action, s=spec: a.do(s.params, svc.tools))
        if ok:
            continue
        what = f"{spec.action} on {spec.target} failed: {result.error_line() or 'error'}"
        so_far = f"{done} of {total} snapshots deleted, the rest kept"
        op.undo_or_stay(what, [(n, plan[n - 1]) for n in range(first, number)])
        taken = [plan[n - 1] for n in range(first, number)
                 if not action_of(plan[n - 1]).reversible]
        if not taken:
            message = f"{what}; {name!r} untouched; {so_far}"
            op.complete(lambda lg: None, "failed" if done else "compensated", message)
            if done:
                raise PartlyDone(f"prune stopped: {message}")
            raise OperationFailed(f"{what}; nothing changed")
        devices = [s.target for s in taken]
        message = (f"{what}; snapshot {name!r} was already removed from "
                   f"{', '.join(devices)} and is now incomplete ('xlsnap snapshot-delete' "
                   f"finishes it); {so_far}")
        op.complete(lambda lg: lg.record_disks_removed(
            op.operation_id, name, _devices(lg, name, devices), svc.actor), "failed", message)
        raise PartlyDone(f"prune stopped: {message}")
    op.record(lambda: op.ledger.record_removed(op.operation_id, name, svc.actor))


def _devices(ledger: DomainLedger, name: str, paths: list[str]) -> list[str]:
    """The devices of snapshot ``name`` whose images are ``paths``."""
    return [d["device"] for d in ledger.entry(name)["record"]["disks"] if d["file"] in paths]


def finish_recorded(ledger: DomainLedger, op: dict[str, Any], actor: dict[str, Any]) -> None:
    """``recover``'s fact for a prune rolled forward: each planned snapshot not yet
    recorded deleted is now (all its steps are done)."""
    for name, _, _ in op["details"].get("groups", []):
        if name in ledger.entries:
            ledger.record_removed(op["operation_id"], name, actor)
