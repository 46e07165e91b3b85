"""The folders xlsnap keeps state and secrets in: created private, never re-moded.

The rules are the README's ("Where state lives"); each function says its part.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from commands.errors import UsageError

_OTHERS_WRITE = stat.S_IWGRP | stat.S_IWOTH


class UnsafeFolder(UsageError):
    """A folder that others could write to, or that belongs to someone else (exit 2): the
    message names the folder, its mode and its owner."""


def describe(path: Path, st: os.stat_result) -> str:
    """``PATH (mode 2775, owner uid 0 gid 1)`` for messages."""
    return f"{path} (mode {stat.S_IMODE(st.st_mode):04o}, owner uid {st.st_uid} gid {st.st_gid})"


def _owner_ok(st: os.stat_result, allow_root: bool) -> bool:
    uid = os.geteuid()
    return st.st_uid == uid or (allow_root and st.st_uid == 0)


def _check_above(path: Path) -> None:
    """Every folder above ``path`` (those that exist): the user's or root's, and shared
    only when sticky."""
    for parent in reversed(path.parents):
        try:
            st = os.stat(parent)
        except FileNotFoundError:
            return
        if not _owner_ok(st, allow_root=True):
            raise UnsafeFolder(f"unsafe folder above {path}: {describe(parent, st)} belongs to "
                               "another user")
        if st.st_mode & _OTHERS_WRITE and not st.st_mode & stat.S_ISVTX:
            raise UnsafeFolder(f"unsafe folder above {path}: {describe(parent, st)} is "
                               "writable by others and not sticky")


def check_private_dir(path: Path, what: str = "folder") -> None:
    """Refuse ``path`` unless it is a real folder of this user that no one else can write.

    The home, the ledger's folder and a domain's folder must be owned by the user running
    xlsnap and writable by no one else (no group or other write bit); each folder above
    them must be owned by that user or root and writable by no one else unless it has the
    sticky bit (like ``/tmp``). Otherwise someone else could move the ledger away or put
    files in its place. An existing folder's mode and owner are never changed.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise UnsafeFolder(f"{what} {path} does not exist") from None
    if stat.S_ISLNK(st.st_mode):
        raise UnsafeFolder(f"{what} {path} is a symbolic link; refusing to use it")
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafeFolder(f"{what} {path} is not a folder")
    if not _owner_ok(st, allow_root=False):
        raise UnsafeFolder(f"unsafe {what} {describe(path, st)}: it belongs to another user "
                           f"(xlsnap runs as uid {os.geteuid()})")
    if st.st_mode & _OTHERS_WRITE:
        raise UnsafeFolder(f"unsafe {what} {describe(path, st)}: writable by others; xlsnap "
                           "does not change it: make it writable by its owner only")
    _check_above(Path(os.path.realpath(path)))


def private_dir(path: Path, what: str = "folder") -> Path:
    """``path`` as a folder of this user's: created 0700 if missing, else checked (never
    chmod'ed)."""
    path = Path(os.path.abspath(path))
    if not os.path.lexists(path):
        _check_above(path)
        for parent in reversed(path.parents):
            if not os.path.lexists(parent):
                try:
                    parent.mkdir(mode=0o755)
                except FileExistsError:
                    pass
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:
            pass  # made by someone else meanwhile: checked below like any existing folder
        else:
            os.chmod(path, 0o700)  # ours, just made: the umask does not decide its mode
            return path
    check_private_dir(path, what)
    return path


def check_secret_dir(path: Path) -> os.stat_result:
    """Refuse a folder for a memory image that others could tamper with.

    A memory image named by ``memory = "/path/m.save"`` may go in a folder xlsnap did not
    create: it must be owned by the user or root and, if others may write to it, have the
    sticky bit (then nobody else can rename or remove the image).
    """
    what = "folder of memory image"
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise UnsafeFolder(f"{what} {path} does not exist") from None
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafeFolder(f"{what} {path} is not a folder")
    if not _owner_ok(st, allow_root=True):
        raise UnsafeFolder(f"unsafe {what} {describe(path, st)}: it belongs to another user")
    if st.st_mode & _OTHERS_WRITE and not st.st_mode & stat.S_ISVTX:
        raise UnsafeFolder(f"unsafe {what} {describe(path, st)}: writable by others and not "
                           "sticky; xlsnap does not change it")
    _check_above(Path(os.path.realpath(path)))
    return st


def secret_dir(path: Path) -> bool:
    """Make sure a memory image may be written in ``path``: create it (0700) if missing,
    else check it. True when others may write to the folder (sticky), so the image must
    be created by xlsnap itself (``O_EXCL|O_NOFOLLOW``) before any tool writes to it."""
    if not os.path.lexists(path):
        private_dir(path)
        return False
    return bool(check_secret_dir(path).st_mode & _OTHERS_WRITE)


def create_secret_file(path: str) -> None:
    """A new empty 0600 file at ``path``, never through a link (``O_EXCL|O_NOFOLLOW``)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600)
    os.close(fd)
