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
