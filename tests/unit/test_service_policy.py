"""policy.toml: its checks (file, line, reason), grants by user, group and domain pattern."""

from __future__ import annotations

from pathlib import Path

import pytest

from commands.cli.main import SUBCOMMANDS
from commands.service.peer import Peer
from commands.service.policy import COMMAND_RIGHTS, PolicyError, load_policy

ALICE = Peer(pid=1, uid=1000, gid=1000, user="alice", groups=("alice", "ops"), gids=(1000, 50))
ROOT = Peer(pid=1, uid=0, gid=0, user="root", groups=("root",), gids=(0,))


def test_every_sub_command_has_exactly_one_right() -> None:
    assert set(COMMAND_RIGHTS) == set(SUBCOMMANDS)


@pytest.mark.parametrize("text, where, reason", [
    ('[[allow]]\nusers = ["a"\n', ":2:", "Unclosed array"),
    ('[[allow]]\nusers = ["a"]\n\n[[allow]]\ngroups = ["g"]\nrights = ["wrte"]\n', ":4:",
     "unknown right 'wrte'"),
    ('[[allow]]\nusers = ["a"]\nwho = 1\n', ":1:", "unknown key 'who'"),
    ('[[allow]]\nrights = ["read"]\n', ":1:", "names no users and no groups"),
    ('[[allow]]\nusers = ["a"]\npaths = ["srv"]\n', ":1:", "path 'srv' is not absolute"),
    ('[deny]\nusers = ["a"]\n', ":1:", "unknown table 'deny'"),
])
def test_a_malformed_policy_names_file_line_and_reason(tmp_path: Path, text: str, where: str,
                                                       reason: str) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(text)
    with pytest.raises(PolicyError) as caught:
        load_policy(str(path))
    assert str(caught.value).startswith(f"{path}{where}") and reason in str(caught.value)


def test_grants_by_user_group_and_pattern(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text('[[allow]]\nusers = ["alice"]\ndomains = ["web-*"]\nrights = ["read"]\n'
                    '[[allow]]\ngroups = ["ops"]\ndomains = ["*"]\nrights = ["create"]\n'
                    'paths = ["/srv/snap"]\n')
    policy = load_policy(str(path))
    assert policy.allows(ALICE, "read", "web-1") and not policy.allows(ALICE, "read", "db")
    assert policy.allows(ALICE, "create", "db") and policy.allows(ALICE, "create", None)
    assert not policy.allows(ALICE, "read", None) and not policy.allows(ALICE, "delete", "web-1")
    assert policy.allows(ROOT, "admin", None)
    assert policy.paths(ALICE, "create", "db") == [Path("/srv/snap")]
    assert load_policy(str(tmp_path / "absent.toml")).grants == ()
