"""The operator's queries on a real tree: snapshot-list filters, parent, info, domains."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tests.conftest import Run, Scratch, write_pattern

Xlsnap = Callable[..., Run]


@pytest.fixture
def branched(scratch: Scratch, xlsnap: Xlsnap) -> Scratch:
    """a -> b -> c, and a -> d (current)."""
    for name in ("a", "b", "c"):
        write_pattern(scratch.disk_a, ord(name))
        assert xlsnap("snapshot-create", "-n", name, "web").code == 0
    assert xlsnap("snapshot-revert", "web", "a").code == 0
    assert xlsnap("snapshot-create", "-n", "d", "web").code == 0
    return scratch


def names(run: Run) -> list[str]:
    assert run.code == 0, run.err
    return run.out.split()


def test_list_filters_on_a_real_tree(branched: Scratch, xlsnap: Xlsnap) -> None:
    assert names(xlsnap("snapshot-list", "--leaves", "--name", "web")) == ["c", "d"]
    assert names(xlsnap("snapshot-list", "--no-leaves", "--name", "web")) == ["a", "b"]
    assert names(xlsnap("snapshot-list", "--roots", "--name", "web")) == ["a"]
    assert names(xlsnap("snapshot-list", "--from", "a", "--name", "web")) == ["b", "d"]
    assert names(xlsnap("snapshot-list", "--from", "a", "--descendants", "--name",
                        "web")) == ["b", "c", "d"]
    assert names(xlsnap("snapshot-list", "--current", "--name", "web")) == []
    assert names(xlsnap("snapshot-list", "--inactive", "--internal", "--name", "web")) == [
        "a", "b", "c", "d"]
    assert names(xlsnap("snapshot-list", "--active", "--name", "web")) == []
    assert xlsnap("snapshot-list", "--from", "b", "--tree", "web").out.split("\n")[:2] == [
        "b", "c"]
    table = xlsnap("snapshot-list", "--parent", "web").out.splitlines()
    assert table[0].split()[:2] == ["Name", "Parent"]
    assert [line.split()[:2] for line in table[1:]] == [
        ["a", "-"], ["b", "a"], ["c", "b"], ["*", "d"]]
    as_json = json.loads(xlsnap("snapshot-list", "--leaves", "--json", "web").out)
    assert [r["name"] for r in as_json] == ["c", "d"]


@pytest.mark.parametrize("args, words", [
    (("--roots", "--tree"), "exclude each other"),
    (("--descendants",), "needs --from"),
    (("--tree", "--leaves"), "do not go with --tree"),
    (("--from", "zz"), "no snapshot named 'zz'"),
])
def test_list_filters_that_cannot_be_meant_are_refused(branched: Scratch, xlsnap: Xlsnap,
                                                       args: tuple[str, ...], words: str) -> None:
    run = xlsnap("snapshot-list", *args, "web")
    assert run.code == 2 and words in run.err, run.err


def test_info_parent_and_current(branched: Scratch, xlsnap: Xlsnap) -> None:
    import getpass
    import socket

    info = json.loads(xlsnap("snapshot-info", "--json", "web", "a").out)
    assert (info["parent"], info["children"], info["descendants"]) == (None, ["b", "d"], 3)
    assert info["type"] == "internal" and info["taken"] == "inactive"
    assert [d["device"] for d in info["disks"]] == ["xvda", "xvdb"]
    assert info["created_by"]["host"] == socket.gethostname()
    assert info["created_by"]["user"] == getpass.getuser()
    text = xlsnap("snapshot-info", "web", "-n", "b").out
    assert "Parent:      a" in text and "Descendants: 1" in text
    assert xlsnap("snapshot-parent", "web", "c").out == "b\n"
    root = xlsnap("snapshot-parent", "web", "a")
    assert root.code == 0 and root.out == "" and "is a root" in root.err
    assert xlsnap("snapshot-current", "--name", "web").out == "d\n"
    assert json.loads(xlsnap("snapshot-current", "--json", "web").out)["name"] == "d"
    missing = xlsnap("snapshot-info", "web", "zz")
    assert missing.code == 2 and "no snapshot named 'zz'" in missing.err


def test_domains_lists_every_domain_with_its_last_operation(branched: Scratch,
                                                            xlsnap: Xlsnap) -> None:
    rows = json.loads(xlsnap("domains", "--json").out)
    assert [(r["name"], r["snapshots"], r["current"]) for r in rows] == [("web", 4, "d")]
    assert rows[0]["in_flight"] is None and rows[0]["last_actor"]["host"]
    assert "web" in xlsnap("domains").out


def test_a_held_snapshot_cannot_be_deleted_until_every_hold_is_released(
        branched: Scratch, xlsnap: Xlsnap) -> None:
    from tests.conftest import read_pattern, tags
    from tests.e2e.test_bad_input import event_count

    assert xlsnap("snapshot-hold", "web", "b", "audit").code == 0
    assert xlsnap("snapshot-hold", "web", "b", "legal").code == 0
    assert xlsnap("snapshot-holds", "web").out.split() == ["b", "audit", "b", "legal"]
    assert xlsnap("projections", "rebuild").code == 0            # the holds replay
    assert xlsnap("snapshot-holds", "web").out.split() == ["b", "audit", "b", "legal"]
    before = event_count(branched.ledger)
    run = xlsnap("snapshot-delete", "web", "b")
    assert run.code == 2 and "is held (audit, legal)" in run.err
    assert event_count(branched.ledger) == before
    assert tags(branched.disk_a) == ["a", "b", "c", "d"]
    assert xlsnap("snapshot-revert", "web", "b").code == 0       # held: still revertable
    assert read_pattern(branched.disk_a, ord("b"))
    assert xlsnap("snapshot-release", "web", "b", "audit").code == 0
    assert xlsnap("snapshot-delete", "web", "b").code == 2       # legal still holds it
    assert xlsnap("snapshot-release", "web", "b", "legal").code == 0
    assert xlsnap("snapshot-delete", "web", "b").code == 0
    assert tags(branched.disk_a) == ["a", "c", "d"]
    history = xlsnap("history", "--kind", "hold", "web").out
    assert "held by 'audit'" in history and "held by 'legal'" in history


@pytest.mark.parametrize("tag, words", [("", "hold tag is empty"), ("x" * 65, "too long"),
                                        ("a\tb", "control characters")])
def test_bad_hold_tags_are_refused(branched: Scratch, xlsnap: Xlsnap, tag: str,
                                   words: str) -> None:
    run = xlsnap("snapshot-hold", "web", "b", tag)
    assert run.code == 2 and words in run.err
    assert xlsnap("snapshot-holds", "web").out == ""


def test_release_of_a_hold_that_is_not_there_is_refused(branched: Scratch,
                                                        xlsnap: Xlsnap) -> None:
    run = xlsnap("snapshot-release", "web", "b", "nope")
    assert run.code == 2 and "has no hold 'nope'" in run.err


def test_marking_current_changes_the_next_parent_not_the_disks(branched: Scratch,
                                                                xlsnap: Xlsnap) -> None:
    from tests.conftest import read_pattern

    write_pattern(branched.disk_a, 0x77)
    run = xlsnap("snapshot-current", "web", "c")
    assert run.code == 0 and "disks unchanged" in run.out
    assert read_pattern(branched.disk_a, 0x77)                    # no revert happened
    assert xlsnap("snapshot-current", "--name", "web").out == "c\n"
    assert xlsnap("snapshot-create", "-n", "e", "web").code == 0
    assert xlsnap("snapshot-parent", "web", "e").out == "c\n"
    diff = json.loads(xlsnap("diff", "web", "--from-event", "1", "--json").out)
    assert "marked-current" in [c["change"] for c in diff["changes"]]
    assert xlsnap("snapshot-current", "web", "zz").code == 2


def test_a_snapshot_whose_image_is_gone_is_forgotten_with_metadata(scratch: Scratch,
                                                                   xlsnap: Xlsnap) -> None:
    from tests.conftest import read_pattern, tags

    write_pattern(scratch.disk_b, 0x42)
    assert xlsnap("snapshot-create", "-n", "s1", "web").code == 0
    assert xlsnap("snapshot-create", "-n", "s2", "web").code == 0
    scratch.disk_a.unlink()                                   # the image is gone
    run = xlsnap("snapshot-delete", "web", "s1")
    assert run.code != 0                                     # nothing to delete it from
    run = xlsnap("snapshot-delete", "--metadata", "web", "s1")
    assert run.code == 0 and "forgotten" in run.out, run.err
    assert names(xlsnap("snapshot-list", "--name", "web")) == ["s2"]
    assert not (scratch.domain_dir / "snapshotdata-s1.libxl-json").exists()
    assert tags(scratch.disk_b) == ["s1", "s2"]              # the files are kept
    assert read_pattern(scratch.disk_b, 0x42)
    assert xlsnap("snapshot-parent", "web", "s2").err.endswith("is a root: it has no parent\n")
    history = json.loads(xlsnap("history", "--json", "web").out)
    assert any(e["event"] == "OperationStarted" and e["data"]["details"].get("metadata_only")
               for e in history)


@pytest.mark.parametrize("kind, details, check", [
    ("hold", {"tag": "audit"}, lambda x: x("snapshot-holds", "web").out.split() == ["b", "audit"]),
    ("mark-current", {}, lambda x: x("snapshot-current", "--name", "web").out == "b\n"),
])
def test_a_mark_left_in_flight_by_a_crash_is_finished_by_recover(
        branched: Scratch, xlsnap: Xlsnap, kind: str, details: dict, check: Callable) -> None:
    import subprocess
    import sys

    from tests.conftest import REPO

    # a process that records the start of the mark, then dies before its end
    script = (
        "import sys, os\n"
        "from commands.bootstrap import open_services\n"
        "from commands.config.settings import Settings\n"
        "from commands.engine.operation import Operation\n"
        f"svc = open_services(Settings.resolve({str(branched.home)!r}, None, "
        f"{str(branched.config_dir)!r}))\n"
        "ledger = svc.ledger_for(svc.resolve('web').domain)\n"
        "op = Operation(svc.app, ledger, svc.actor, svc.tools)\n"
        f"op.start({kind!r}, 'b', {{'domain': 'web', **{details!r}}}, [])\n"
        "os._exit(0)\n")
    subprocess.run([sys.executable, "-c", script], check=True, cwd=REPO, timeout=60)
    assert xlsnap("snapshot-create", "-n", "x", "web").code == 3        # in flight
    run = xlsnap("recover", "web")
    assert run.code == 0, run.err
    assert check(xlsnap)
    assert xlsnap("check", "web").code == 0
