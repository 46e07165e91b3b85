"""Every action a step can name, in one table built here (no registration at import)."""

from __future__ import annotations

from functools import cache

from commands.engine.actions import DISK_ACTIONS, Action, StepSpec


@cache
def actions() -> dict[str, Action]:
    """Every action by name. The live modules load on first use, as before the table was
    built here: a command's first ledger write does not wait for their imports."""
    from commands.engine.actions_block_jobs import BLOCK_JOB_ACTIONS
    from commands.engine.actions_live import LIVE_ACTIONS
    from commands.engine.actions_merge import MERGE_ACTIONS
    from commands.engine.actions_qmp import QMP_ACTIONS
    from commands.engine.actions_restart import RESTART_ACTIONS

    return {a.name: a for a in (*DISK_ACTIONS, *LIVE_ACTIONS, *MERGE_ACTIONS, *QMP_ACTIONS,
                                *RESTART_ACTIONS, *BLOCK_JOB_ACTIONS)}


def action_of(spec: StepSpec) -> Action:
    """The action a step names; a ledger naming an unknown one is refused."""
    try:
        return actions()[spec.action]
    except KeyError:
        raise ValueError(f"unknown action {spec.action!r} in the ledger") from None
