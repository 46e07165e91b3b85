"""What a non-root caller may run through xlsnapd: the right, the files it names, the paths it creates."""

from __future__ import annotations

import os
import stat
from contextlib import contextmanager
from dataclasses import dataclass, field
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from commands.errors import UsageError
from commands.service.peer import Peer
from commands.service.policy import COMMAND_RIGHTS, Policy

#: Per sub-command: parameters naming files the caller reads ("in") or writes ("out").
FILE_PARAMS = {
    "snapshot-create": {"cfgfile": "in"},
    "export": {"out": "out"},
    "prove": {"out": "out", "since_head": "in"},
    "verify": {"heads": "in", "pubkey": "in", "export": "in"},
    "verify-proof": {"proof": "in", "pubkey": "in", "head": "in"},
    "seal": {"key": "in", "out": "out"},
}

#: Sub-commands that run a program the caller names: never as root for someone else.
ROOT_COMMANDS = frozenset({"wrap"})

#: Global options that choose another ledger, home or set of domains: root's only.
ROOT_OPTIONS = ("--home", "--ledger", "--config-dir", "--qmp-dir", "--new-ledger")


class Refused(UsageError):
    """The caller may not run this command: ``right`` is the one missing (None: root's alone);
    without a ``command``, a plain usage refusal (not recorded)."""

    def __init__(self, message: str, right: str | None = None, domain: str | None = None,
                 command: str = "") -> None:
        super().__init__(message)
        self.right, self.domain, self.command = right, domain, command


@dataclass
class Request:
    """A parsed command line: its sub-command, domain and parameters."""

    command: str | None
    domain: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


def parse(argv: list[str]) -> Request:
    """The sub-command and its parameters, parsed as the CLI will (nothing runs)."""
    from commands.cli.main import _invoked, command_tree

    name = _invoked(argv)
    if name is None:
        return Request(None)
    group = command_tree(argv)
    ctx = group.make_context("xlsnap", list(argv), resilient_parsing=True)
    rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
    sub_name, sub, sub_args = group.resolve_command(ctx, rest)
    sub_ctx = sub.make_context(sub_name, sub_args, parent=ctx, resilient_parsing=True)
    params = dict(sub_ctx.params)
    domain = params.get("domain")
    return Request(name, domain if isinstance(domain, str) else None, params)


@contextmanager
def as_caller(peer: Peer) -> Iterator[None]:
    """Act with the caller's uid and groups for the block (the service's are restored)."""
    groups = os.getgroups()
    os.setgroups(list(peer.gids))
    os.setegid(peer.gid)
    os.seteuid(peer.uid)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)
        os.setgroups(groups)


def _open_as_caller(peer: Peer, path: str) -> str:
    """Open ``path`` for reading with the caller's rights; the argument to pass instead."""
    if path == "-":
        return path
    try:
        with as_caller(peer):
            fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise Refused(f"cannot read {path}: {exc.strerror}") from None
    return f"/dev/fd/{fd}"


def _replace(argv: list[str], old: str, new: str) -> list[str]:
    """``argv`` with the word ``old`` (or an ``--opt=old`` word) naming ``new`` instead."""
    out = []
    for word in argv:
        if word == old:
            word = new
        elif word.startswith("-") and word.endswith(f"={old}"):
            word = word[: -len(old)] + new
        out.append(word)
    return out


def _created_paths(path: str) -> list[str]:
    """Memory image and overlays a snapshot config asks for (paths xlsnapd would create)."""
    from commands.config.snapshot_cfg import load_snapshot_cfg

    cfg = load_snapshot_cfg(path)
    memory = cfg.memory if cfg.memory not in ("yes", "no") else None
    return [p for p in (memory, *(d.overlay for d in cfg.disks)) if p]


def _under(path: str, folders: list[Path]) -> bool:
    real = Path(os.path.realpath(path))
    return any(real == Path(os.path.realpath(f)) or Path(os.path.realpath(f)) in real.parents
               for f in folders)


def unsafe_folder(path: str) -> str | None:
    """Why someone other than root could redirect a file xlsnapd creates at ``path`` between
    its check and its use (None: nobody can).

    Each existing folder on the way, as written and resolved, must be root's and writable
    by no one else (a sticky one, such as /tmp, may be, except the file's own folder): else
    its owner could swap a part of the path for a symlink after the check.
    """
    for candidate in dict.fromkeys((os.path.abspath(path), os.path.realpath(path))):
        parent = os.path.dirname(candidate)
        words = parent.strip("/").split("/") if parent != "/" else []
        shared = ""  # the last folder others may add to (sticky): what they add is theirs
        for depth in range(len(words) + 1):
            folder = "/" + "/".join(words[:depth])
            try:
                info = os.lstat(folder)
            except FileNotFoundError:
                if shared:
                    return f"{folder} does not exist, and others may create it in {shared}"
                break  # root creates the rest, in a folder only root can change
            if info.st_uid != 0:
                return f"{folder} belongs to uid {info.st_uid}, not root"
            if stat.S_ISLNK(info.st_mode):
                shared = ""
                continue  # root's link; where it leads: the resolved path
            if info.st_mode & 0o022 and (folder == parent or not info.st_mode & stat.S_ISVTX):
                return f"{folder} is writable by others than root"
            shared = folder if info.st_mode & 0o022 else ""
    return None


def admit(argv: list[str], peer: Peer, policy: Policy) -> list[str]:
    """The command line to run for this caller, or Refused; root runs anything as given."""
    if peer.is_root:
        return argv
    for word in argv:
        if word.partition("=")[0] in ROOT_OPTIONS:
            option = word.partition("=")[0]
            raise Refused(f"{option} is root's through xlsnapd", command=option)
    request = parse(argv)
    if request.command is None:
        return argv  # help, or a usage error main() reports
    if request.command in ROOT_COMMANDS:
        raise Refused(f"{request.command} runs a program, which xlsnapd does only for root; "
                      "run 'xlsnap snapshot-create' before and after it instead",
                      domain=request.domain, command=request.command)
    right = COMMAND_RIGHTS[request.command]
    if not policy.allows(peer, right, request.domain):
        where = f"domain {request.domain!r}" if request.domain else "every domain"
        raise Refused(f"{peer.user} lacks the {right!r} right on {where} ({request.command})",
                      right, request.domain, request.command)
    for param, direction in FILE_PARAMS.get(request.command, {}).items():
        values = request.params.get(param)
        for value in values if isinstance(values, (list, tuple)) else [values]:
            if not isinstance(value, str):
                continue
            if direction == "out":
                if value != "-":
                    raise Refused(f"through xlsnapd, {peer.user} writes files by redirection: "
                                  f"use '-' (stdout) instead of {value}")
                continue
            opened = _open_as_caller(peer, value)
            if request.command == "snapshot-create" and opened != "-":
                allowed = policy.paths(peer, right, request.domain)
                for created in _created_paths(opened):
                    if not _under(created, allowed):
                        raise Refused(f"{created} is outside the folders the policy lets "
                                      f"{peer.user} use for {request.domain!r}", right,
                                      request.domain, request.command)
                    why = unsafe_folder(created)
                    if why is not None:
                        raise Refused(f"{created}: {why}, so the path xlsnapd would create "
                                      "could be redirected; use a folder only root can change",
                                      right, request.domain, request.command)
            argv = _replace(argv, value, opened)
    return argv
