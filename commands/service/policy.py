"""Who may do what through xlsnapd: /etc/xlsnap/policy.toml, and each sub-command's right."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from commands.errors import UsageError
from commands.service.peer import Peer

DEFAULT_POLICY = "/etc/xlsnap/policy.toml"
RIGHTS = ("read", "create", "revert", "delete", "admin")

#: The right each sub-command needs (on its domain; without a domain, on every domain).
COMMAND_RIGHTS = {
    "snapshot-list": "read", "snapshot-info": "read", "snapshot-parent": "read",
    "snapshot-holds": "read", "history": "read", "replay": "read", "diff": "read",
    "export": "read", "verify": "read", "prove": "read", "verify-proof": "read",
    "check": "read", "domains": "read",
    "snapshot-create": "create", "snapshot-edit": "create", "wrap": "create",
    "snapshot-revert": "revert", "snapshot-current": "revert",
    "snapshot-delete": "delete", "prune": "delete", "snapshot-hold": "delete",
    "snapshot-release": "delete",
    "recover": "admin", "adopt": "admin", "seal": "admin", "projections": "admin",
    "ledger": "admin",
}

_KEYS = {"users", "groups", "domains", "rights", "paths"}


class PolicyError(UsageError):
    """A malformed policy file: ``file:line: reason``."""


@dataclass(frozen=True)
class Grant:
    """One ``[[allow]]`` table."""

    users: tuple[str, ...]
    groups: tuple[str, ...]
    domains: tuple[str, ...]
    rights: frozenset[str]
    paths: tuple[Path, ...]

    def covers(self, peer: Peer, domain: str | None) -> bool:
        """Does this grant name the peer and the domain (None: every domain, so ``*``)?"""
        if peer.user not in self.users and not set(self.groups) & set(peer.groups):
            return False
        if domain is None:
            return "*" in self.domains
        return any(fnmatchcase(domain, pattern) for pattern in self.domains)


@dataclass(frozen=True)
class Policy:
    """The grants of one policy file (none: only root may act)."""

    source: str
    grants: tuple[Grant, ...] = ()

    def allows(self, peer: Peer, right: str, domain: str | None) -> bool:
        return peer.is_root or any(right in g.rights and g.covers(peer, domain)
                                   for g in self.grants)

    def paths(self, peer: Peer, right: str, domain: str | None) -> list[Path]:
        """Where the grants giving ``right`` let the peer place overlays and memory images."""
        return [p for g in self.grants if right in g.rights and g.covers(peer, domain)
                for p in g.paths]


def _strings(table: dict[str, object], key: str, where: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PolicyError(f"{where}: {key!r} must be a list of strings")
    return tuple(value)


def _grant(table: object, where: str) -> Grant:
    if not isinstance(table, dict):
        raise PolicyError(f"{where}: [[allow]] must be a table")
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise PolicyError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_KEYS))})")
    users, groups = _strings(table, "users", where), _strings(table, "groups", where)
    rights = _strings(table, "rights", where)
    bad = [r for r in rights if r not in RIGHTS]
    if bad:
        raise PolicyError(f"{where}: unknown right {bad[0]!r} (one of {', '.join(RIGHTS)})")
    if not users and not groups:
        raise PolicyError(f"{where}: names no users and no groups")
    paths = _strings(table, "paths", where)
    relative = [p for p in paths if not p.startswith("/")]
    if relative:
        raise PolicyError(f"{where}: path {relative[0]!r} is not absolute")
    return Grant(users, groups, _strings(table, "domains", where), frozenset(rights),
                 tuple(Path(p) for p in paths))


def load_policy(path: str) -> Policy:
    """Read and check the policy file; a missing file is an empty policy (root only)."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return Policy(path)
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"\(at line (\d+)", str(exc))
        line = match.group(1) if match else len(text.splitlines()) or 1
        raise PolicyError(f"{path}:{line}: {str(exc).split(' (at ')[0]}") from None
    unknown = sorted(set(data) - {"allow"})
    if unknown:
        raise PolicyError(f"{path}:{_line_of(text, unknown[0])}: unknown table {unknown[0]!r}")
    tables = data.get("allow", [])
    if not isinstance(tables, list):
        raise PolicyError(f"{path}:{_line_of(text, 'allow')}: 'allow' must be [[allow]] tables")
    lines = [n for n, line in enumerate(text.splitlines(), 1)
             if re.match(r"\s*\[\[\s*allow\s*\]\]", line)]
    return Policy(path, tuple(_grant(t, f"{path}:{lines[i] if i < len(lines) else '?'}")
                              for i, t in enumerate(tables)))


def _line_of(text: str, word: str) -> int | str:
    for n, line in enumerate(text.splitlines(), 1):
        if word in line:
            return n
    return "?"
