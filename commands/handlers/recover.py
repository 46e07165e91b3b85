"""``recover``: finish or undo an operation whose process died, from the ledger and reality."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from commands.engine.actions import Evidence, StepSpec
from commands.engine.step_registry import action_of
from commands.drivers.process import DriverError
from commands.drivers.qmp import QmpError
from commands.engine.base_fingerprints import with_base_fingerprints
from commands.errors import AttentionNeeded, LedgerBlocked, ResourceBusy, UsageError
from commands.state.memory_images import with_memory_digest
from commands.engine.operation import Operation
from commands.engine.operation_errors import CompensationFailed
from commands.engine.signal_hold import signals_deferred
from commands.handlers.prune_run import finish_recorded
from commands.handlers.delete_external import record_delete
from commands.handlers.revert_external import record_revert
from commands.bootstrap import Services
from ledger.domain import DomainLedger
from ledger.owner import ALIVE, REMOTE, current_owner, describe, owner_state


#: How often recovery tries one side effect before giving up for this run.
TRIES = 3


@dataclass(frozen=True)
class Recovery:
    """What recovery did for one domain."""

    domain: str
    operation_id: str | None
    decision: str
    message: str


def check_owner(op: dict[str, Any], domain: str, force: bool) -> dict[str, Any] | None:
    """Refuse an operation whose owner runs (here), or runs elsewhere unless ``force``;
    returns what a forced recovery records (None when not forced)."""
    owner = op.get("owner")
    state = owner_state(owner)
    what = f"operation {op['operation_id']} ({op['kind']} {op.get('snapshot_name')!r})"
    user = op.get("actor", {}).get("user")
    if state == ALIVE:
        assert owner is not None
        raise ResourceBusy(f"{what} of domain {domain!r} is still running, "
                            f"{describe(owner)} (started by {user}); not recovering it")
    if state == REMOTE:
        assert owner is not None
        if not force:
            raise ResourceBusy(
                f"{what} of domain {domain!r} is owned by {describe(owner, user)}, which "
                "this host cannot check; if that process is gone, run 'xlsnap recover "
                f"--force {domain}'")
        return {"owner": owner, "owner_state": state}
    return None


def recover_domain(svc: Services, domain_id: str, force: bool = False) -> Recovery:
    """Recover the operation in flight on one domain, if any.

    For each planned step recovery decides whether it happened: a step never started
    or whose undo finished did not; a step whose outcome was recorded did; for a step
    whose outcome is missing (or whose undo's is) a probe of reality decides
    (``qemu-img info``, the files; for a running domain QMP's ``query-status``,
    ``query-block`` and ``query-migrate``, ``xl list``), and a step reality cannot tell
    about (a qcow2 apply, a ``snapshot-load``) counts as unknown. A domain that a crashed
    operation left paused is resumed by the undo of its pause (or, rolling forward, by its
    ``domain-unpause`` step). The operation rolls forward when every step
    happened (a delete always rolls forward: its steps cannot be taken back), else
    back, undoing in reverse every step that happened or may have. The decision and
    its evidence are recorded first; running recovery again repeats nothing.

    An operation whose owning process still runs on this host is not touched ("still
    running"); one owned by a process on another host only with ``force`` (recorded in
    the decision's evidence). From its decision on, the recovering process owns it.
    """
    ledger: DomainLedger = svc.app.load(UUID(domain_id))
    op = ledger.in_flight
    if op is None:
        return Recovery(ledger.domain_name, None, "none", "nothing in flight")
    forced = check_owner(op, ledger.domain_name, force)
    plan = [StepSpec.from_dict(s) for s in op["details"].get("plan", [])]
    operation = Operation(svc.app, ledger, svc.actor, svc.tools, op["operation_id"])
    with signals_deferred():
        evidence, happened = _inspect(ledger, plan, svc)
        if forced is not None:
            evidence["forced"] = forced
        forward = op["kind"] in ("delete", "prune") or all(
            happened[n] is True or action_of(s).best_effort for n, s in enumerate(plan, 1))
        decision = "forward" if forward else "back"
        ledger.decide_recovery(op["operation_id"], decision, evidence, svc.actor,
                               current_owner())
        try:
            svc.app.save(ledger)
        except IntegrityError:  # the owner (or another recover) wrote meanwhile
            now: DomainLedger = svc.app.load(UUID(domain_id))
            if now.in_flight is None or now.in_flight["operation_id"] != op["operation_id"]:
                return Recovery(ledger.domain_name, None, "none",
                                "nothing in flight (its owner finished it meanwhile)")
            raise LedgerBlocked(f"the ledger of domain {ledger.domain_name!r} changed while "
                                f"recovery looked at operation {op['operation_id']}; nothing "
                                "was done: run 'xlsnap recover' again") from None
        if forward:
            _roll_forward(operation, ledger, op, plan, happened, svc)
        else:
            failures = operation.undo_steps(
                [(n, s) for n, s in enumerate(plan, 1) if happened[n] is not False], TRIES)
            if failures:
                raise CompensationFailed(f"recovery of operation {op['operation_id']} could "
                                         f"not undo: {'; '.join(failures)}; run recover again")
            operation.complete(lambda lg: None, "recovered-back",
                               f"recovery undid {op['kind']} {op.get('snapshot_name')!r}")
    svc.sync()
    verb = "finished" if forward else "undid"
    return Recovery(ledger.domain_name, op["operation_id"], decision,
                    f"{verb} {op['kind']} {op.get('snapshot_name')!r} "
                    f"(operation {op['operation_id']})")


def recover_all(svc: Services, force: bool = False) -> list[Recovery]:
    """Recover every domain that has an operation in flight; one that cannot be
    (still running, changed meanwhile) is reported as ``refused``."""
    svc.sync()
    rows = svc.view.db.execute(
        "SELECT domain_id FROM view_domains WHERE in_flight IS NOT NULL").fetchall()
    results = []
    for (domain_id,) in rows:
        try:
            results.append(recover_domain(svc, str(domain_id), force))
        except AttentionNeeded as exc:  # busy or changed: the other domains still go on
            ledger: DomainLedger = svc.app.load(UUID(str(domain_id)))
            results.append(Recovery(ledger.domain_name, None, "refused", str(exc)))
    return results


def _inspect(
    ledger: DomainLedger, plan: list[StepSpec], svc: Services
) -> tuple[dict[str, Any], dict[int, bool | None]]:
    evidence: dict[str, Any] = {}
    happened: dict[int, bool | None] = {}
    for number, spec in enumerate(plan, start=1):
        do_state = ledger.step_state(number, "do")
        undo_state = ledger.step_state(number, "undo")
        record = {"do": do_state, "undo": undo_state}
        if do_state is None or undo_state == "done":
            happened[number] = False
        elif do_state == "done" and undo_state is None:
            happened[number] = True  # its outcome was recorded; later steps may hide it
        else:
            seen = _probe(spec, svc)
            happened[number] = seen.happened
            record["probe"] = seen.detail
        record["happened"] = happened[number]
        evidence[str(number)] = record
    return evidence, happened


def _probe(spec: StepSpec, svc: Services) -> Evidence:
    """What reality says of one step; a probe that cannot look (a domain's QMP socket
    gone, xl failing) counts as unknown, never as an answer."""
    try:
        return action_of(spec).probe(spec.params, svc.tools)
    except (DriverError, QmpError, OSError) as exc:
        return Evidence(None, {"probe_error": str(exc)})


def _roll_forward(operation: Operation, ledger: DomainLedger, op: dict[str, Any],
                  plan: list[StepSpec], happened: dict[int, bool | None],
                  svc: Services) -> None:
    for number, spec in enumerate(plan, start=1):
        if happened[number] is True:
            continue
        action = action_of(spec)
        ok, result = operation.attempt_with_retries(
            number, "do", spec, action.argv(spec.params, svc.tools),
            lambda a=action, s=spec: a.do(s.params, svc.tools), TRIES)
        if not ok and not action.best_effort:
            raise CompensationFailed(f"recovery could not finish {spec.action} on "
                                     f"{spec.target}: {result.error_line()}; run recover again")
    name = op.get("snapshot_name")
    tag = op["details"].get("tag")
    record = with_base_fingerprints(with_memory_digest(op["details"].get("record", {})))
    take = lambda lg: lg.record_taken(op["operation_id"], name,  # noqa: E731
                                      record, svc.actor)
    facts = {
        "create": take,
        "adopt": take,
        "revert": lambda lg: record_revert(lg, op["operation_id"], name,
                                           op["details"].get("edited", {}), svc.actor),
        "delete": lambda lg: record_delete(lg, op["operation_id"], name,
                                           op["details"].get("edited", {}), svc.actor),
        # the operator's marks have no steps: what was asked is recorded at the start
        "mark-current": lambda lg: lg.record_marked_current(op["operation_id"], name,
                                                            svc.actor),
        "hold": lambda lg: lg.record_held(op["operation_id"], name, tag, svc.actor),
        "release": lambda lg: lg.record_released(op["operation_id"], name, tag, svc.actor),
        "prune": lambda lg: finish_recorded(lg, op, svc.actor),
        "edit": lambda lg: lg.record_edited(op["operation_id"], name,
                                            op["details"]["new_name"],
                                            op["details"]["record"], svc.actor),
    }
    if op["kind"] not in facts:
        raise UsageError(f"cannot recover an operation of kind {op['kind']!r}")
    operation.complete(facts[op["kind"]], "recovered-forward",
                       f"recovery finished {op['kind']} {name!r}")
