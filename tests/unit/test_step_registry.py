"""The one table of actions: every action of the engine's modules, each name once."""

from __future__ import annotations

import pytest

from commands.engine import actions, actions_block_jobs, actions_live, actions_merge, actions_qmp, \
    actions_restart
from commands.engine.actions import StepSpec
from commands.engine.step_registry import action_of, actions as action_table


def test_every_action_is_in_the_table_under_its_own_name() -> None:
    defined = [*actions.DISK_ACTIONS, *actions_live.LIVE_ACTIONS, *actions_merge.MERGE_ACTIONS,
               *actions_qmp.QMP_ACTIONS,
               *actions_restart.RESTART_ACTIONS, *actions_block_jobs.BLOCK_JOB_ACTIONS]
    assert len({a.name for a in defined}) == len(defined)  # no name given twice
    table = action_table()
    assert {name: type(a) for name, a in table.items()} == {a.name: type(a) for a in defined}
    assert "" not in action_table()


def test_every_action_class_is_in_the_table() -> None:
    def subclasses(cls: type) -> set[type]:
        return {c for s in cls.__subclasses__() for c in {s} | subclasses(s)}

    concrete = {c for c in subclasses(actions.Action) if c.name}
    assert concrete <= {type(a) for a in action_table().values()}


def test_an_unknown_action_in_the_ledger_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown action 'no-such-step'"):
        action_of(StepSpec("no-such-step", "x"))
    assert action_of(StepSpec("internal-snapshot-create", "x")).name == "internal-snapshot-create"
