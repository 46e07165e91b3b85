"""Replay and diff on a real scratch domain, through the CLI and against the projection."""

from __future__ import annotations

import pytest

import json

from ledger.app import LedgerApp
from ledger.domain import domain_ledger_id
from projections.replay import replay_domain
from projections.tree_view import TreeView
from tests.conftest import Scratch
from tests.scenario import play


@pytest.mark.sqlite_only
def test_replay_at_every_position_equals_the_projection_caught_up_to_it(
        scratch: Scratch, xlsnap, tmp_path) -> None:
    play(xlsnap)
    copy = tmp_path / "copy.sqlite"
    copy.write_bytes(scratch.ledger.read_bytes())
    app = LedgerApp(str(copy))
    view = TreeView(app, checkpoint_every=4)
    view.rebuild(until=0)
    domain_id = str(domain_ledger_id(scratch.uuid))
    try:
        for position in range(app.max_position() + 1):
            view.catch_up(until=position)
            for use_checkpoints in (True, False):
                past = replay_domain(app, view.db, domain_id, position, use_checkpoints)
                assert past.tables.domain_rows(domain_id) == view.domain_rows(domain_id)
                past.close()
    finally:
        view.close()
        app.close()


def test_replay_now_renders_as_snapshot_list(scratch: Scratch, xlsnap) -> None:
    play(xlsnap)
    tree = xlsnap("replay", "web", "--as-of", "now")
    assert tree.code == 0, tree.err
    header, *lines = tree.out.splitlines()
    assert "log position" in header
    assert lines == xlsnap("snapshot-list", "--tree", "web").out.splitlines()
    assert xlsnap("replay", "web", "--as-of", "now", "-l").out.split("\n", 1)[1] == \
        xlsnap("snapshot-list", "-l", "web").out
    data = json.loads(xlsnap("replay", "web", "--at-event", "0", "--json").out)
    assert data["tree"] == [] and data["position"] == 0
    now = json.loads(xlsnap("replay", "web", "--as-of", "now", "--json").out)
    assert now["tree"] == json.loads(xlsnap("snapshot-list", "--tree", "--json", "web").out)


def test_replay_shows_the_tree_before_a_delete(scratch: Scratch, xlsnap) -> None:
    play(xlsnap)
    history = json.loads(xlsnap("history", "--json").out)
    deleted = next(r["position"] for r in history if r["event"] == "SnapshotDeleted")
    run = xlsnap("replay", "web", "--at-event", str(deleted - 1))
    assert run.out.splitlines()[1:] == ["s1", "+-- s2", "+-- s3  <- current"]
    table = xlsnap("replay", "web", "--at-event", str(deleted - 1), "--table").out
    assert "* s3" in table and "s2" in table


def test_diff_lists_each_change_and_who_made_it(scratch: Scratch, xlsnap) -> None:
    play(xlsnap)
    run = xlsnap("diff", "web", "--from-event", "0", "--json")
    assert run.code == 0, run.err
    data = json.loads(run.out)
    assert [(c["change"], c["name"]) for c in data["changes"]] == [
        ("created", "s1"), ("created", "s2"), ("reverted", "s1"), ("created", "s3"),
        ("deleted", "s2")]
    assert all(c["actor"]["user"] and c["operation_id"] for c in data["changes"])
    assert data["changes"][3]["parent"] == "s1"
    assert data["current"] == {"from": None, "to": "s3"}
    assert data["snapshots"] == {"from": [], "to": ["s1", "s3"]}
    text = xlsnap("diff", "web", "--from", "1h").out
    assert "- s2  deleted" in text and "current: (none) -> s3" in text


def test_replay_and_diff_refuse_bad_input(scratch: Scratch, xlsnap) -> None:
    assert xlsnap("snapshot-create", "-n", "s1", "web").code == 0
    for args in (("replay", "web"), ("replay", "web", "--as-of", "now", "--at-event", "1"),
                 ("replay", "web", "--as-of", "yesterday-ish"),
                 ("replay", "web", "--at-event", "9999"), ("diff", "web"),
                 ("diff", "web", "--from-event", "5", "--to-event", "2"),
                 ("replay", "nosuch", "--as-of", "now")):
        run = xlsnap(*args)
        assert run.code == 2, (args, run.err)
        assert run.err.startswith("xlsnap: error:") and len(run.err.splitlines()) == 1
