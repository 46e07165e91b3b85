"""Run a live operation's plan so that a domain it paused is always resumed."""

from __future__ import annotations

import sys

from commands.engine.actions import StepSpec
from commands.engine.actions_live import DomainUnpause, domain_state, resume
from commands.drivers.process import DriverError
from commands.drivers.qmp import QmpError
from commands.engine.operation import Operation
from commands.toolstacks.base import Live

_PAUSING = ("domain-pause", "memory-save", "domain-restore", "memory-load", "vm-snapshot-load",
            "qemu-quit", "domain-destroy")


def run_guarded(op: Operation, plan: list[StepSpec], live: Live) -> None:
    """``op.run(plan)``; on any exception resume the domain if it ran and is paused."""
    try:
        op.run(plan)
    except BaseException:
        resume_after_failure(op, plan, live)
        raise


def resume_after_failure(op: Operation, plan: list[StepSpec], live: Live) -> None:
    """Resume a domain left paused by a failed plan; never raises.

    The pause step's undo resumes the domain when a later step fails; this is the second
    line: if the plan raises anything at all (a failed undo, an interruption between two
    steps, a bug) and the domain that was running is found paused, it is resumed here,
    and that is recorded as the plan's ``domain-unpause`` step while the operation is
    still in flight (otherwise reported as a warning, there being no operation to record
    it in).
    """
    if not live.was_running or not any(s.action in _PAUSING for s in plan):
        return
    params = {"toolstack": live.toolstack, "socket": live.qmp_socket,
              "domain": op.ledger.domain_name, "was_running": True}
    numbered = [(n, s) for n, s in enumerate(plan, 1) if s.action == "domain-unpause"]
    number, spec = numbered[0] if numbered else (0, StepSpec("domain-unpause",
                                                             params["domain"], params))
    argv = DomainUnpause().argv(params, op.tools)  # xl unpause, or QMP cont
    in_flight = op.ledger.in_flight
    try:
        if domain_state(params, op.tools) in ("running", None):
            return  # resumed by the undo already, or gone: nothing to do or record
        if number and in_flight is not None and in_flight["operation_id"] == op.operation_id:
            op.attempt(number, "do", spec, argv, lambda: resume(params, op.tools, argv))
        else:
            result = resume(params, op.tools, argv)
            if not result.detail.get("already") and not result.detail.get("absent"):
                print(f"xlsnap: warning: resumed domain {params['domain']!r} after the "
                      "failure", file=sys.stderr)
    except (DriverError, QmpError, OSError) as exc:
        print(f"xlsnap: warning: could not resume domain {params['domain']!r}: {exc}",
              file=sys.stderr)
